//! Unit tests of the analysis: each layer's output on texts written for it, and the properties
//! the contract promises (spans point at the text, same input same output, context lowers).

use super::*;

fn run(text: &str) -> BiasAnalysis {
    analyze(&BiasRequest {
        text,
        context: None,
        detailed: false,
    })
}

fn classes(a: &BiasAnalysis) -> Vec<&'static str> {
    a.protected_classes.iter().map(|c| c.as_str()).collect()
}

#[test]
fn every_span_points_at_its_text() {
    for text in [
        "All women are too emotional to lead.",
        "Every nurse should make sure she washes her hands; the chairman agreed.",
        "Muslims are violent, they hate us. “Typical”, said my neighbour.",
        "Ünïcode first: Jews are greedy.",
    ] {
        let a = run(text);
        for e in &a.entities_detected {
            assert_eq!(&text[e.start..e.end], e.text, "{text}");
        }
        for p in &a.bias_patterns {
            assert_eq!(&text[p.span.start..p.span.end], p.span.text, "{text}");
        }
    }
}

#[test]
fn explicit_and_implicit_group_mentions() {
    let a = run("Immigrants from Mexico arrived last year and they opened a bakery.");
    let implicit: Vec<&Entity> = a.entities_detected.iter().filter(|e| e.implicit).collect();
    assert!(
        implicit.iter().any(|e| e.text == "they"),
        "{:?}",
        a.entities_detected
    );
    let b = run("Gay men and elderly people joined the Jewish community centre.");
    let found = classes(&b);
    for class in ["sexual_orientation", "age", "religion"] {
        assert!(found.contains(&class), "{class} missing from {found:?}");
    }
    // The context names the group "they" refers to.
    let c = analyze(&BiasRequest {
        text: "They are all lazy.",
        context: Some("We were talking about Mexicans."),
        detailed: false,
    });
    assert!(
        c.entities_detected.iter().any(|e| e.implicit
            && matches!(
                e.class,
                ProtectedClass::Nationality | ProtectedClass::RaceEthnicity
            )),
        "{:?}",
        c.entities_detected
    );
}

#[test]
fn a_generalisation_is_found_scored_and_rewritten() {
    let a = run("All women are too emotional to lead.");
    assert!(a.bias_detected, "{a:#?}");
    assert!(a.bias_types.contains(&BiasType::Stereotyping), "{a:#?}");
    assert!(classes(&a).contains(&"gender"));
    let pattern = a
        .bias_patterns
        .iter()
        .find(|p| p.pattern == "generalisation")
        .expect("a generalisation pattern");
    assert!(pattern.span.text.contains("women"), "{pattern:?}");
    let rewrite = a.suggested_rewrite.as_deref().unwrap_or_default();
    assert!(rewrite.starts_with("Some women"), "{rewrite}");
    assert!(!a.explanation.is_empty() && !a.severity.reasoning.is_empty());
}

#[test]
fn qualifiers_negation_and_reporting_lower_the_score() {
    let plain = run("Muslims are violent.");
    for softer in [
        "Some Muslims are violent.",
        "Muslims are not violent.",
        "The stereotype that Muslims are violent is false and racist.",
    ] {
        let s = run(softer);
        assert!(
            s.bias_score < plain.bias_score,
            "{softer:?} scored {} ≥ {} of the plain claim",
            s.bias_score,
            plain.bias_score
        );
    }
    assert!(plain.bias_detected, "{plain:#?}");
}

#[test]
fn neutral_text_is_not_biased_and_neutral_mentions_score_below_claims() {
    for text in [
        "Please send the quarterly figures by Friday.",
        "We went to the market on Saturday and bought apples.",
    ] {
        let a = run(text);
        assert!(!a.bias_detected, "{text:?}: {a:#?}");
        assert_eq!(a.bias_level, BiasLevel::None);
        assert!(a.suggested_rewrite.is_none(), "{text:?}");
    }
    // A neutral sentence naming a group sits near the boundary (the model learned from comments
    // that nearly all name one; see docs/quality.md), but always below a claim about the group.
    for (neutral, claim) in [
        (
            "My Jewish neighbour invited us to dinner for Passover.",
            "Jews are greedy and control the banks.",
        ),
        (
            "The report covers employment rates for disabled workers in 2021.",
            "Disabled people are a burden on everyone.",
        ),
        (
            "The women's team won the championship on Saturday.",
            "Women are too emotional to play sports.",
        ),
    ] {
        let (n, c) = (run(neutral), run(claim));
        assert!(
            n.bias_score < c.bias_score,
            "{neutral:?} {} ≥ {}",
            n.bias_score,
            c.bias_score
        );
        assert!(c.bias_detected, "{claim:?}: {c:#?}");
    }
}

#[test]
fn gendered_defaults_get_neutral_wording() {
    let a = run("Every nurse should make sure she washes her hands, and the chairman must sign.");
    assert!(a.bias_types.contains(&BiasType::GenderedDefault), "{a:#?}");
    let rewrite = a.suggested_rewrite.expect("a rewrite");
    assert!(!rewrite.contains("chairman"), "{rewrite}");
    assert!(!rewrite.contains(" she "), "{rewrite}");
}

#[test]
fn dehumanising_generalisations_are_high() {
    let a = run("Immigrants are vermin and parasites.");
    assert!(a.bias_detected, "{a:#?}");
    assert!(a.bias_types.contains(&BiasType::Dehumanization), "{a:#?}");
    assert!(a.bias_level >= BiasLevel::Moderate, "{a:#?}");
}

#[test]
fn same_input_same_output_and_empty_text_is_fine() {
    let text = "Old people can't learn technology, they are useless.";
    let (a, b) = (run(text), run(text));
    assert_eq!(a.bias_score, b.bias_score);
    assert_eq!(a.explanation, b.explanation);
    assert_eq!(a.bias_patterns, b.bias_patterns);
    let empty = run("   ");
    assert!(!empty.bias_detected && empty.bias_score == 0.0);
}

#[test]
fn detailed_reasoning_says_more() {
    let text = "Women are bad drivers and should stay in the kitchen.";
    let short = run(text);
    let long = analyze(&BiasRequest {
        text,
        context: None,
        detailed: true,
    });
    assert!(long.severity.reasoning.len() >= short.severity.reasoning.len());
    assert!(short.bias_detected, "{short:#?}");
}

#[test]
fn the_shared_policy_vocabulary_matches_the_analysis() {
    let types: Vec<&str> = BiasType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(types, cg_guard_api::biasguard::BIAS_TYPES);
    let classes: Vec<&str> = ProtectedClass::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(classes, cg_guard_api::biasguard::PROTECTED_CLASSES);
}

#[test]
fn predicate_words_of_a_targeted_group_are_named_features() {
    let f = analysis_features("Muslims are violent, I read.");
    assert!(
        f.contains_key("p:violent") && f.contains_key("p:are"),
        "{f:?}"
    );
    // Only the clause after the mention, and not for the dominant group.
    assert!(!f.contains_key("p:read"));
    assert!(!analysis_features("Men are violent.").contains_key("p:violent"));
}
