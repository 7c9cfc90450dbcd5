//! Random run and model names in MLflow's `adjective-noun-123` style.

use rand::Rng;
use rand::seq::IndexedRandom;

const ADJECTIVES: &[&str] = &[
    "able", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager", "fair",
    "gentle", "glad", "grand", "honest", "jolly", "keen", "kind", "lively", "lucky", "merry",
    "mighty", "nimble", "polite", "proud", "quick", "quiet", "rare", "sharp", "smooth", "steady",
    "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "zesty",
];
const NOUNS: &[&str] = &[
    "ant", "bat", "bear", "bee", "bird", "boar", "cat", "colt", "crab", "crow", "deer", "dove",
    "duck", "eel", "elk", "finch", "fox", "frog", "gnu", "goat", "hare", "hawk", "hen", "jay",
    "lark", "lion", "lynx", "mole", "moth", "newt", "owl", "ox", "ram", "seal", "shrew", "snail",
    "swan", "toad", "trout", "wasp", "whale", "wolf", "worm", "yak",
];

/// A fresh random name such as `swift-owl-417`.
pub fn random_name() -> String {
    let mut rng = rand::rng();
    let adj = ADJECTIVES.choose(&mut rng).expect("non-empty list");
    let noun = NOUNS.choose(&mut rng).expect("non-empty list");
    format!("{adj}-{noun}-{}", rng.random_range(0..1000))
}
