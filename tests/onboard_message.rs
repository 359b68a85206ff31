//! The onboarding message from recorded answers of the real backend (uvicorn over the sample
//! dataset and over a differently shaped clinic dataset; tests/fixtures/onboard/*): the questions
//! name that dataset's own measures and dimensions, and the password appears only when asked.

mod common;

use munero_infra::onboard::{questions, render, Examples, Format, Message, Profile, MAX_QUESTIONS, MIN_QUESTIONS};

fn recorded(ds: &str) -> (Profile, Examples) {
    let dir = common::repo_root().join("tests/fixtures/onboard").join(ds);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    (serde_json::from_str(&read("profile.json")).unwrap(), serde_json::from_str(&read("examples.json")).unwrap())
}

fn labels(p: &Profile) -> Vec<String> {
    p.measures.iter().chain(&p.dimensions).map(|f| f.label.to_lowercase()).chain(p.fact_table.clone()).collect()
}

fn message(p: &Profile, ex: &Examples, password: Option<&str>) -> Message {
    let (dataset, measures, dimensions) = Message::from_profile(p);
    Message {
        trial: "acme".into(),
        url: "https://acme.trials.example.net/".into(),
        user: "ann".into(),
        password: password.map(str::to_string),
        own_ca: false,
        dataset,
        measures,
        dimensions,
        questions: questions(p, ex),
        feedback: Some("trials@example.net".into()),
        ends: "2026-02-14".into(),
    }
}

#[test]
fn questions_name_the_measures_and_dimensions_of_each_dataset() {
    let (sample, sample_ex) = recorded("sample");
    let (clinic, clinic_ex) = recorded("clinic");
    for (p, ex, own, other) in [(&sample, &sample_ex, "amount", "fee"), (&clinic, &clinic_ex, "fee", "amount")] {
        let q = questions(p, ex);
        assert!((MIN_QUESTIONS..=MAX_QUESTIONS).contains(&q.len()), "{q:?}");
        let known = labels(p);
        for question in &q {
            let lower = question.to_lowercase();
            assert!(known.iter().any(|l| lower.contains(l.as_str())), "{question:?} names nothing of {known:?}");
            assert!(!lower.contains(other), "{question:?} names the other dataset's {other}");
        }
        assert!(q.iter().any(|x| x.to_lowercase().contains(own)));
    }
    // The clinic's dimensions, not the sample's, reach its message.
    let text = render(&message(&clinic, &clinic_ex, None), Format::Text);
    assert!(text.contains("specialty") && text.contains("clinic") && !text.contains("channel"), "{text}");
}

#[test]
fn the_password_is_in_the_message_only_when_asked() {
    let (p, ex) = recorded("sample");
    let pw = "Xk7mPq9RtWz3Hn4Jc8Vb2Fd6";
    for f in [Format::Text, Format::Markdown, Format::Html] {
        let without = render(&message(&p, &ex, None), f);
        assert!(!without.contains(pw) && without.contains("sent to you separately"), "{without}");
        assert!(without.contains("https://acme.trials.example.net/") && without.contains("ann"));
        assert!(without.contains("trials@example.net") && without.contains("2026-02-14"));
        assert!(without.contains("deleted"), "the wipe policy is stated");
        assert!(render(&message(&p, &ex, Some(pw)), f).contains(pw));
    }
}

#[test]
fn each_format_has_its_own_markup() {
    let (p, ex) = recorded("clinic");
    let m = message(&p, &ex, None);
    let md = render(&m, Format::Markdown);
    assert!(md.starts_with("# Your trial") && md.contains("\n## Questions to start with\n\n1. "), "{md}");
    let html = render(&m, Format::Html);
    assert!(html.starts_with("<h1>") && html.contains("<ol>\n  <li>") && !html.contains("# "), "{html}");
    let text = render(&m, Format::Text);
    assert!(text.contains("\nQuestions to start with\n  1. "), "{text}");
}

#[test]
fn a_self_test_answer_counts_only_without_an_error() {
    use munero_infra::onboard::answered;
    use serde_json::json;
    assert_eq!(answered(200, &json!({"row_count": 3, "error": null})), Ok(3));
    assert_eq!(answered(200, &json!({"row_count": 0, "error": "no such column"})), Err("no such column".into()));
    assert_eq!(answered(503, &json!({"detail": "model missing"})), Err("model missing".into()));
}
