//! Training, prediction, export and persistence through the crate's public surface.

use sextant_gbdt::{EarlyStopping, Gbdt, Node, Objective, Params};

/// A reproducible uniform generator in [0, 1), so the tests need no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn params(objective: Objective) -> Params {
    Params {
        objective,
        ..Params::default()
    }
}

/// Rows of `n_features` uniform values, one in ten missing when `with_nan`.
fn features(rng: &mut Lcg, n: usize, n_features: usize, with_nan: bool) -> Vec<f64> {
    (0..n * n_features)
        .map(|_| {
            let v = rng.next() * 10.0 - 5.0;
            if with_nan && rng.next() < 0.1 {
                f64::NAN
            } else {
                v
            }
        })
        .collect()
}

#[test]
fn a_stump_learns_a_step_function_exactly() {
    let x: Vec<f64> = (0..200).map(f64::from).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|v| if *v < 80.0 { 1.0 } else { 5.0 })
        .collect();
    let p = Params {
        n_trees: 1,
        learning_rate: 1.0,
        max_leaf_nodes: Some(2),
        min_samples_leaf: 1,
        ..params(Objective::Regression)
    };
    let model = Gbdt::fit(&p, &x, 1, &y).unwrap();
    let Node::Split {
        feature, threshold, ..
    } = model.trees()[0].nodes[0]
    else {
        panic!("the root must split: {:?}", model.trees()[0]);
    };
    assert_eq!(feature, 0);
    assert!((79.0..80.0).contains(&threshold), "threshold {threshold}");
    let predictions = model.predict(&x).unwrap();
    for (p, y) in predictions.iter().zip(&y) {
        assert!((p - y).abs() < 1e-12, "{p} vs {y}");
    }
}

#[test]
fn predictions_follow_monotone_data_and_the_training_loss_falls() {
    let x: Vec<f64> = (0..1_000).map(|i| f64::from(i) / 100.0).collect();
    let y: Vec<f64> = x.iter().map(|v| v * v).collect();
    let model = Gbdt::fit(&params(Objective::Regression), &x, 1, &y).unwrap();
    let predictions = model.predict(&x).unwrap();
    for w in predictions.windows(2) {
        assert!(w[1] >= w[0] - 1e-9, "not monotone: {w:?}");
    }
    let rmse = (predictions
        .iter()
        .zip(&y)
        .map(|(p, y)| (p - y).powi(2))
        .sum::<f64>()
        / 1_000.0)
        .sqrt();
    assert!(rmse < 0.5, "rmse {rmse} on y in [0, 100)");
    let mean = y.iter().sum::<f64>() / 1_000.0;
    assert!((model.baseline()[0] - mean).abs() < 1e-9);
}

#[test]
fn missing_values_are_routed_to_the_side_they_resemble() {
    // Missing x behaves like large x: both have y = 10.
    let mut rng = Lcg(7);
    let x: Vec<f64> = (0..2_000)
        .map(|_| {
            if rng.next() < 0.2 {
                f64::NAN
            } else {
                rng.next()
            }
        })
        .collect();
    let y: Vec<f64> = x
        .iter()
        .map(|v| if v.is_nan() || *v > 0.5 { 10.0 } else { 0.0 })
        .collect();
    let p = Params {
        n_trees: 20,
        max_leaf_nodes: Some(2),
        ..params(Objective::Regression)
    };
    let model = Gbdt::fit(&p, &x, 1, &y).unwrap();
    let predictions = model.predict(&[f64::NAN, 0.9, 0.1]).unwrap();
    assert!(
        (predictions[0] - predictions[1]).abs() < 1e-9,
        "{predictions:?}"
    );
    assert!(
        predictions[0] > 8.0 && predictions[2] < 2.0,
        "{predictions:?}"
    );
}

#[test]
fn missing_alone_can_be_the_split() {
    // Missing means y = 1, any value y = 0: the only useful split is "missing or not".
    let x: Vec<f64> = (0..400)
        .map(|i| if i % 4 == 0 { f64::NAN } else { f64::from(i) })
        .collect();
    let y: Vec<f64> = x
        .iter()
        .map(|v| if v.is_nan() { 1.0 } else { 0.0 })
        .collect();
    let p = Params {
        n_trees: 1,
        learning_rate: 1.0,
        max_leaf_nodes: Some(2),
        ..params(Objective::Regression)
    };
    let model = Gbdt::fit(&p, &x, 1, &y).unwrap();
    assert_eq!(
        model.predict(&[f64::NAN, 3.0, 1e9]).unwrap(),
        [1.0, 0.0, 0.0]
    );
    let ensemble = model.to_tree_ensemble();
    assert_eq!(
        ensemble.evaluate(&[f64::NAN, 3.0, 1e9], 1).unwrap(),
        [1.0, 0.0, 0.0]
    );
}

#[test]
fn binary_classification_separates_a_linear_boundary() {
    let mut rng = Lcg(11);
    let x = features(&mut rng, 3_000, 3, true);
    let y: Vec<f64> = x
        .chunks(3)
        .map(|r| f64::from(u8::from(r[0].max(-5.0) + r[1] > 0.0)))
        .collect();
    let model = Gbdt::fit(&params(Objective::Binary), &x, 3, &y).unwrap();
    let proba = model.predict(&x).unwrap();
    let correct = proba
        .chunks(2)
        .zip(&y)
        .filter(|(p, y)| f64::from(u8::from(p[1] > 0.5)) == **y)
        .count();
    assert!(correct > 2_700, "{correct} of 3000 correct");
    for p in proba.chunks(2) {
        assert!((p[0] + p[1] - 1.0).abs() < 1e-12);
    }
}

/// Agreement of the flat ensemble with the trees, for every objective, on rows with missing
/// values and on values exactly at thresholds.
#[test]
fn the_flat_ensemble_predicts_exactly_what_the_model_does() {
    let mut rng = Lcg(3);
    let n_features = 4;
    let x = features(&mut rng, 2_000, n_features, true);
    let objectives = [
        (Objective::Regression, 1),
        (Objective::Binary, 2),
        (Objective::Multiclass { n_classes: 3 }, 3),
    ];
    for (objective, columns) in objectives {
        let y: Vec<f64> = x
            .chunks(n_features)
            .map(|r| {
                let r: Vec<f64> = r
                    .iter()
                    .map(|v| if v.is_nan() { 0.0 } else { *v })
                    .collect();
                let s = r[0].max(-2.0) + 0.5 * r[1].min(1.0) - r[2].abs() * 0.3;
                match objective {
                    Objective::Regression => s,
                    Objective::Binary => f64::from(u8::from(s > 0.0)),
                    Objective::Multiclass { .. } => {
                        f64::from(u8::from(s > -1.0) + u8::from(s > 1.0))
                    }
                }
            })
            .collect();
        let p = Params {
            n_trees: 30,
            ..params(objective)
        };
        let model = Gbdt::fit(&p, &x, n_features, &y).unwrap();
        let ensemble = model.to_tree_ensemble();
        assert_eq!(ensemble.base_values.len(), objective.n_outputs());
        // Probe rows: the training rows, plus rows sitting exactly on every threshold.
        let mut probe = x.clone();
        for &t in ensemble.nodes_values.iter().filter(|t| t.is_finite()) {
            probe.extend(std::iter::repeat_n(t, n_features));
        }
        let expected = model.predict(&probe).unwrap();
        let flat = ensemble.evaluate(&probe, n_features).unwrap();
        assert_eq!(expected.len(), probe.len() / n_features * columns);
        for (i, (a, b)) in expected.iter().zip(&flat).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                "{objective:?} value {i}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn multiclass_grows_one_tree_per_class_and_learns_the_classes() {
    let mut rng = Lcg(5);
    let x = features(&mut rng, 1_500, 2, false);
    let y: Vec<f64> = x
        .chunks(2)
        .map(|r| ((r[0] + 5.0) / 10.0 * 3.0).floor().min(2.0))
        .collect();
    let p = Params {
        n_trees: 10,
        ..params(Objective::Multiclass { n_classes: 3 })
    };
    let model = Gbdt::fit(&p, &x, 2, &y).unwrap();
    assert_eq!(model.trees().len(), 30);
    let proba = model.predict(&x).unwrap();
    let argmax = |p: &[f64]| (0..3).max_by(|a, b| p[*a].total_cmp(&p[*b])).unwrap() as f64;
    let correct = proba
        .chunks(3)
        .zip(&y)
        .filter(|(p, y)| argmax(p) == **y)
        .count();
    assert!(correct > 1_400, "{correct} of 1500 correct");
}

#[test]
fn early_stopping_halts_when_the_validation_loss_stops_improving() {
    let mut rng = Lcg(9);
    let x = features(&mut rng, 2_000, 2, false);
    // Pure noise: nothing generalizes, so the validation loss soon stops improving.
    let y: Vec<f64> = (0..2_000).map(|_| rng.next()).collect();
    let p = Params {
        n_trees: 500,
        early_stopping: Some(EarlyStopping::default()),
        ..params(Objective::Regression)
    };
    let model = Gbdt::fit(&p, &x, 2, &y).unwrap();
    assert!(model.n_iter() < 100, "ran {} iterations", model.n_iter());
    assert_eq!(model.trees().len(), model.n_iter());
    let again = Gbdt::fit(&p, &x, 2, &y).unwrap();
    assert_eq!(model, again, "the same seed must give the same model");
}

#[test]
fn a_model_survives_json_unchanged() {
    let x: Vec<f64> = (0..300)
        .map(|i| {
            if i % 7 == 0 {
                f64::NAN
            } else {
                f64::from(i % 50)
            }
        })
        .collect();
    let y: Vec<f64> = x
        .iter()
        .map(|v| {
            if v.is_nan() {
                2.0
            } else {
                f64::from(u8::from(*v > 20.0))
            }
        })
        .collect();
    let model = Gbdt::fit(&params(Objective::Multiclass { n_classes: 3 }), &x, 1, &y).unwrap();
    let loaded = Gbdt::from_json(&model.to_json()).unwrap();
    assert_eq!(loaded, model);
    assert_eq!(loaded.predict(&x).unwrap(), model.predict(&x).unwrap());
}

#[test]
fn bad_inputs_are_refused_with_a_message() {
    let p = params(Objective::Binary);
    let error = Gbdt::fit(&p, &[1.0, 2.0], 1, &[0.0, 2.0]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid input: label 2 of row 1 is not a class index below 2"
    );
    assert!(Gbdt::fit(&p, &[1.0, 2.0, 3.0], 2, &[0.0, 1.0]).is_err());
    let zero_trees = Params { n_trees: 0, ..p };
    assert!(Gbdt::fit(&zero_trees, &[1.0], 1, &[0.0]).is_err());
    assert!(Gbdt::from_json(r#"{"params":{},"n_features":1,"baseline":[0],"trees":[{"nodes":[{"split":{"feature":0,"threshold":1,"missing_left":true,"left":0,"right":0}}]}],"n_iter":1}"#).is_err());
}

#[test]
fn fit_until_stops_at_the_iteration_it_is_asked_to() {
    let mut rng = Lcg(11);
    let x = features(&mut rng, 300, 2, false);
    let y: Vec<f64> = x.chunks(2).map(|r| r[0] - 2.0 * r[1]).collect();
    let p = Params {
        n_trees: 50,
        ..params(Objective::Regression)
    };
    let asked = std::cell::Cell::new(0);
    let stop_at_five = || {
        asked.set(asked.get() + 1);
        asked.get() > 5
    };
    let stopped = Gbdt::fit_until(&p, &x, 2, &y, &stop_at_five);
    assert!(
        matches!(stopped, Err(sextant_gbdt::GbdtError::Stopped)),
        "{stopped:?}"
    );
    assert_eq!(asked.get(), 6, "asked once per iteration, then gave up");
    let never = Gbdt::fit_until(&p, &x, 2, &y, &|| false).unwrap();
    assert_eq!(never, Gbdt::fit(&p, &x, 2, &y).unwrap());
    assert_eq!(never.n_iter(), 50);
}
