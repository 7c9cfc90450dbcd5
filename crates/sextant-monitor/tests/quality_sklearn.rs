//! Model-quality metrics on fixed data against scikit-learn (1.x; `from sklearn import
//! metrics as M`), the SageMaker file shapes, and constraints. Values computed the same way
//! match to 1e-12.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sextant_monitor::quality::{
    ComparisonOperator, Observation, Pair, ProblemType, QualityConstraints, QualityError,
    QualityMetrics, check, default_positive, metric_names, metrics, suggest,
};

fn close(got: f64, want: f64) {
    assert!((got - want).abs() <= 1e-12, "got {got}, want {want}");
}
fn pairs(p: &[Observation], y: &[Observation], prob: Option<&[f64]>) -> Vec<Pair> {
    (0..p.len())
        .map(|i| Pair {
            prediction: p[i].clone(),
            label: y[i].clone(),
            probability: prob.map(|q| q[i]),
        })
        .collect()
}
fn nums(v: &[f64]) -> Vec<Observation> {
    v.iter().map(|x| Observation::Number(*x)).collect()
}
fn labels(v: &[&str]) -> Vec<Observation> {
    v.iter().map(|x| Observation::from(*x)).collect()
}
fn value(m: &QualityMetrics, name: &str) -> f64 {
    m.get(name).unwrap_or_else(|| panic!("no {name}")).value
}

#[test]
fn regression_against_sklearn() {
    // y = [3.0,-0.5,2.0,7.0,4.2,1.1,0.0,5.5]; p = [2.5,0.0,2.0,8.0,3.9,1.5,-0.3,6.1]
    // M.mean_absolute_error -> 0.44999999999999996, M.mean_squared_error -> 0.27499999999999997,
    // sqrt -> 0.5244044240850757, M.r2_score -> 0.9552743259383497
    let y = [3.0, -0.5, 2.0, 7.0, 4.2, 1.1, 0.0, 5.5];
    let p = [2.5, 0.0, 2.0, 8.0, 3.9, 1.5, -0.3, 6.1];
    // Labels as strings (CSV ground truth) and predictions as numbers mix freely.
    let y: Vec<Observation> = y
        .iter()
        .map(|v| Observation::Label(format!("{v}")))
        .collect();
    let m = metrics(
        ProblemType::Regression,
        &pairs(&nums(&p), &y, None),
        &default_positive(),
    )
    .unwrap();
    close(value(&m, "mae"), 0.44999999999999996);
    close(value(&m, "mse"), 0.27499999999999997);
    close(value(&m, "rmse"), 0.5244044240850757);
    close(value(&m, "r2"), 0.9552743259383497);
    assert_eq!(
        m.get("mae").unwrap().standard_deviation,
        None,
        "fewer than 200 pairs"
    );
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(
        json["regression_metrics"]["mae"]["standard_deviation"],
        Value::Null
    );
    assert_eq!(serde_json::from_value::<QualityMetrics>(json).unwrap(), m);
    // A label that is not a number names its pair.
    let bad = pairs(&nums(&[1.0, 2.0]), &labels(&["1", "n/a"]), None);
    let e = metrics(ProblemType::Regression, &bad, &default_positive()).unwrap_err();
    assert_eq!(
        e,
        QualityError::NotANumber {
            index: 1,
            field: "label",
            value: "n/a".into()
        }
    );
    assert!(e.to_string().contains("pair 1") && e.to_string().contains("n/a"));
    assert_eq!(
        metrics(ProblemType::Regression, &[], &default_positive()).unwrap_err(),
        QualityError::Empty
    );
}

#[test]
fn binary_against_sklearn() {
    // yb = [1,0,1,1,0,0,1,0,1,1,0,0,0,1,0,1,1,0,0,0]
    // prob = [0.9,0.2,0.4,0.8,0.6,0.1,0.7,0.3,0.55,0.95,0.5,0.5,0.05,0.5,0.45,0.65,0.35,0.75,0.2,0.15]
    // pb = [1 if q >= 0.5 else 0 for q in prob]
    // M.accuracy_score 0.7, precision_score 0.6363636363636364, recall_score 0.7777777777777778,
    // fbeta_score(beta=0.5) 0.660377358490566, f1_score 0.7, fbeta_score(beta=2) 0.7446808510638298,
    // roc_auc_score(yb, prob) 0.8282828282828283 (ties at 0.5 and 0.2),
    // confusion_matrix(yb, pb, labels=[1,0]) -> [[7, 2], [4, 7]]
    let yb = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0];
    let prob = [
        0.9, 0.2, 0.4, 0.8, 0.6, 0.1, 0.7, 0.3, 0.55, 0.95, 0.5, 0.5, 0.05, 0.5, 0.45, 0.65, 0.35,
        0.75, 0.2, 0.15,
    ];
    let pb: Vec<f64> = prob
        .iter()
        .map(|q| if *q >= 0.5 { 1.0 } else { 0.0 })
        .collect();
    // Labels "1"/"0" as strings, predictions 1.0/0.0: the same classes.
    let y: Vec<Observation> = yb
        .iter()
        .map(|v| Observation::Label(v.to_string()))
        .collect();
    let m = metrics(
        ProblemType::BinaryClassification,
        &pairs(&nums(&pb), &y, Some(&prob)),
        &default_positive(),
    )
    .unwrap();
    close(value(&m, "accuracy"), 0.7);
    close(value(&m, "precision"), 0.6363636363636364);
    close(value(&m, "recall"), 0.7777777777777778);
    close(value(&m, "true_positive_rate"), 0.7777777777777778);
    close(value(&m, "f0_5"), 0.660377358490566);
    close(value(&m, "f1"), 0.7);
    close(value(&m, "f2"), 0.7446808510638298);
    close(value(&m, "auc"), 0.8282828282828283);
    close(value(&m, "true_negative_rate"), 7.0 / 11.0);
    close(value(&m, "false_positive_rate"), 4.0 / 11.0);
    close(value(&m, "false_negative_rate"), 2.0 / 9.0);
    // Best constant: 9 of 20 positive.
    close(value(&m, "accuracy_best_constant_classifier"), 0.55);
    close(value(&m, "precision_best_constant_classifier"), 0.45);
    close(value(&m, "recall_best_constant_classifier"), 1.0);
    close(value(&m, "f1_best_constant_classifier"), 2.0 * 0.45 / 1.45);
    let QualityMetrics::BinaryClassification(b) = &m else {
        panic!("binary")
    };
    assert_eq!(b.confusion_matrix["1"]["1"], 7);
    assert_eq!(b.confusion_matrix["1"]["0"], 2);
    assert_eq!(b.confusion_matrix["0"]["1"], 4);
    assert_eq!(b.confusion_matrix["0"]["0"], 7);
    let roc = b.receiver_operating_characteristic_curve.as_ref().unwrap();
    assert_eq!(roc.true_positive_rates.len(), 101);
    // Threshold 0.50 is the 51st point (1.00, 0.99, …): the confusion matrix's rates.
    close(roc.true_positive_rates[50], 7.0 / 9.0);
    close(roc.false_positive_rates[50], 4.0 / 11.0);
    assert_eq!(
        (roc.true_positive_rates[100], roc.false_positive_rates[100]),
        (1.0, 1.0)
    );
    let pr = b.precision_recall_curve.as_ref().unwrap();
    close(pr.precisions[50], 7.0 / 11.0);
    let json = serde_json::to_value(&m).unwrap();
    assert!(json["binary_classification_metrics"]["f0_5"]["value"].is_number());
    assert_eq!(serde_json::from_value::<QualityMetrics>(json).unwrap(), m);

    // Without probabilities there is no AUC (and a constraint on it is an error).
    let no_prob = metrics(
        ProblemType::BinaryClassification,
        &pairs(&nums(&pb), &y, None),
        &default_positive(),
    )
    .unwrap();
    assert!(no_prob.get("auc").is_none());
    let c = QualityConstraints::from_map(
        ProblemType::BinaryClassification,
        json!({"auc": {"threshold": 0.7, "comparison_operator": "LessThanThreshold"}})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    assert!(
        check(&no_prob, &c)
            .unwrap_err()
            .to_string()
            .contains("probability")
    );
    assert!(check(&m, &c).unwrap().is_empty());

    // A named positive class; three classes are not binary; a positive class not among two.
    let yes = metrics(
        ProblemType::BinaryClassification,
        &pairs(
            &labels(&["yes", "no", "yes"]),
            &labels(&["yes", "yes", "no"]),
            None,
        ),
        &Observation::from("yes"),
    )
    .unwrap();
    close(value(&yes, "precision"), 0.5);
    let three = pairs(&labels(&["a", "b", "c"]), &labels(&["a", "b", "b"]), None);
    assert!(matches!(
        metrics(
            ProblemType::BinaryClassification,
            &three,
            &default_positive()
        ),
        Err(QualityError::NotBinary { .. })
    ));
    let two = pairs(&labels(&["a", "b"]), &labels(&["a", "b"]), None);
    let e = metrics(ProblemType::BinaryClassification, &two, &default_positive()).unwrap_err();
    assert!(e.to_string().contains("'1'"), "{e}");
    let bad = pairs(&nums(&[1.0]), &nums(&[1.0]), Some(&[1.5]));
    assert_eq!(
        metrics(ProblemType::BinaryClassification, &bad, &default_positive()).unwrap_err(),
        QualityError::BadProbability {
            index: 0,
            value: 1.5
        }
    );
}

#[test]
fn multiclass_against_sklearn() {
    // ym = ["cat","dog","bird","cat","dog","bird","cat","cat","dog","bird","fish","cat"]
    // pm = ["cat","dog","dog","cat","cat","bird","cat","bird","dog","dog","cat","cat"]
    // M.accuracy_score 0.5833333333333334; average='weighted' (zero_division=0):
    // precision 0.5277777777777778, recall 0.5833333333333334, f1 0.545887445887446,
    // fbeta(0.5) 0.5325716328438652, fbeta(2) 0.5660485347985348
    let ym = labels(&[
        "cat", "dog", "bird", "cat", "dog", "bird", "cat", "cat", "dog", "bird", "fish", "cat",
    ]);
    let pm = labels(&[
        "cat", "dog", "dog", "cat", "cat", "bird", "cat", "bird", "dog", "dog", "cat", "cat",
    ]);
    let m = metrics(
        ProblemType::MulticlassClassification,
        &pairs(&pm, &ym, None),
        &default_positive(),
    )
    .unwrap();
    close(value(&m, "accuracy"), 0.5833333333333334);
    close(value(&m, "weighted_precision"), 0.5277777777777778);
    close(value(&m, "weighted_recall"), 0.5833333333333334);
    close(value(&m, "weighted_f1"), 0.545887445887446);
    close(value(&m, "weighted_f0_5"), 0.5325716328438652);
    close(value(&m, "weighted_f2"), 0.5660485347985348);
    // Majority class "cat": 5 of 12.
    close(value(&m, "accuracy_best_constant_classifier"), 5.0 / 12.0);
    let QualityMetrics::MulticlassClassification(mc) = &m else {
        panic!("multiclass")
    };
    assert_eq!(mc.confusion_matrix["cat"]["cat"], 4);
    assert_eq!(mc.confusion_matrix["fish"]["cat"], 1);
    assert!(!mc.confusion_matrix.contains_key("none"));
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(
        json["multiclass_classification_metrics"]["confusion_matrix"]["bird"]["dog"],
        2
    );
}

#[test]
fn standard_deviation_from_subsamples_at_200() {
    // 300 pairs with |error| 0..3: the five 80 % subsamples' MAEs vary, but only a little.
    let p: Vec<f64> = (0..300).map(|i| f64::from(i) + f64::from(i % 4)).collect();
    let y: Vec<f64> = (0..300).map(f64::from).collect();
    let prs = pairs(&nums(&p), &nums(&y), None);
    let m = metrics(ProblemType::Regression, &prs, &default_positive()).unwrap();
    let mae = m.get("mae").unwrap();
    close(mae.value, 1.5);
    let sd = mae.standard_deviation.expect("n >= 200");
    assert!(sd > 0.0 && sd < 0.2, "{sd}");
    assert_eq!(
        m,
        metrics(ProblemType::Regression, &prs, &default_positive()).unwrap(),
        "seeded"
    );
    assert!(
        metrics(ProblemType::Regression, &prs[..199], &default_positive())
            .unwrap()
            .get("mae")
            .unwrap()
            .standard_deviation
            .is_none()
    );
}

#[test]
fn constraints_suggest_check_and_parse() {
    let prs = pairs(
        &nums(&[1.0, 2.0, 3.0, 4.0]),
        &nums(&[1.5, 2.0, 2.5, 5.0]),
        None,
    );
    let baseline = metrics(ProblemType::Regression, &prs, &default_positive()).unwrap();
    let c = suggest(&baseline);
    let (problem, map) = c.problem().unwrap();
    assert_eq!(problem, ProblemType::Regression);
    assert_eq!(
        map["mae"].comparison_operator,
        ComparisonOperator::GreaterThanThreshold
    );
    assert_eq!(
        map["r2"].comparison_operator,
        ComparisonOperator::LessThanThreshold
    );
    assert!(
        check(&baseline, &c).unwrap().is_empty(),
        "the baseline meets its own constraints"
    );
    // SageMaker's file shape, and back.
    let file = serde_json::to_value(&c).unwrap();
    assert_eq!(
        file["regression_constraints"]["mae"]["comparison_operator"],
        "GreaterThanThreshold"
    );
    assert!(file.get("binary_classification_constraints").is_none());
    assert_eq!(
        serde_json::from_value::<QualityConstraints>(file.clone()).unwrap(),
        c
    );
    assert_eq!(
        QualityConstraints::from_map(ProblemType::Regression, file.as_object().unwrap()).unwrap(),
        c
    );

    // A worse window breaks mae and r2.
    let worse = pairs(
        &nums(&[1.0, 2.0, 3.0, 4.0]),
        &nums(&[3.0, 0.0, 5.0, 1.0]),
        None,
    );
    let window = metrics(ProblemType::Regression, &worse, &default_positive()).unwrap();
    let v = check(&window, &c).unwrap();
    let names: Vec<&str> = v.iter().map(|v| v.metric_name.as_str()).collect();
    assert_eq!(names, ["mae", "mse", "r2", "rmse"]);
    assert_eq!(
        v[0].constraint_check_type,
        ComparisonOperator::GreaterThanThreshold
    );
    assert!(
        v[0].description
            .starts_with("Metric mae with 2.25 was GreaterThanThreshold '0.5'"),
        "{}",
        v[0].description
    );

    // The plain map; bad operators, unknown metrics and other problem types are named.
    let plain: Map<String, Value> = serde_json::from_str(
        r#"{"mae": {"threshold": 1.0, "comparison_operator": "GreaterThanThreshold"}}"#,
    )
    .unwrap();
    let c = QualityConstraints::from_map(ProblemType::Regression, &plain).unwrap();
    assert_eq!(check(&window, &c).unwrap().len(), 1);
    let err = |j: Value, p| {
        QualityConstraints::from_map(p, j.as_object().unwrap())
            .unwrap_err()
            .to_string()
    };
    let e = err(
        json!({"mae": {"threshold": 1.0, "comparison_operator": "Bigger"}}),
        ProblemType::Regression,
    );
    assert!(e.contains("'mae'") && e.contains("Bigger"), "{e}");
    let e = err(
        json!({"auc": {"threshold": 1.0, "comparison_operator": "LessThanThreshold"}}),
        ProblemType::Regression,
    );
    assert!(
        e.contains("'auc'") && e.contains("not a Regression metric"),
        "{e}"
    );
    let e = err(
        json!({"binary_classification_constraints": {}}),
        ProblemType::Regression,
    );
    assert!(e.contains("BinaryClassification"), "{e}");
    let binary = QualityConstraints::new(ProblemType::BinaryClassification, Default::default());
    assert!(matches!(
        check(&window, &binary),
        Err(QualityError::ProblemMismatch { .. })
    ));
    assert_eq!(
        check(&window, &QualityConstraints::default()).unwrap_err(),
        QualityError::NoProblemType
    );
    assert!(
        metric_names(ProblemType::BinaryClassification).contains(&"f0_5_best_constant_classifier")
    );
}

#[test]
fn operators_follow_sagemaker() {
    use ComparisonOperator::*;
    assert!(LessThanThreshold.violated(0.4, 0.5) && !LessThanThreshold.violated(0.5, 0.5));
    assert!(LessThanOrEqualToThreshold.violated(0.5, 0.5));
    assert!(GreaterThanThreshold.violated(0.6, 0.5) && !GreaterThanThreshold.violated(0.5, 0.5));
    assert!(GreaterThanOrEqualToThreshold.violated(0.5, 0.5));
}

proptest! {
    #[test]
    fn classification_metrics_are_rates(
        v in proptest::collection::vec((0u8..2, 0u8..2, 0.0f64..=1.0), 1..300),
    ) {
        let prs: Vec<Pair> = v
            .iter()
            .map(|(p, y, q)| Pair { prediction: Observation::Number(f64::from(*p)), label: Observation::Number(f64::from(*y)), probability: Some(*q) })
            .collect();
        let m = metrics(ProblemType::BinaryClassification, &prs, &default_positive()).unwrap();
        for (name, metric) in m.scalars() {
            prop_assert!((0.0..=1.0).contains(&metric.value), "{name} = {}", metric.value);
            prop_assert!(metric.standard_deviation.is_none_or(|s| s.is_finite() && s >= 0.0));
        }
        let mc = metrics(ProblemType::MulticlassClassification, &prs, &default_positive()).unwrap();
        for (name, metric) in mc.scalars() {
            prop_assert!((0.0..=1.0 + 1e-12).contains(&metric.value), "{name} = {}", metric.value);
        }
        prop_assert!((value(&mc, "accuracy") - value(&m, "accuracy")).abs() < 1e-12);
    }
}
