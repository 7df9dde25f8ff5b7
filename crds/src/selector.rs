//! Kubernetes label selector matching (`matchLabels` + `matchExpressions`), as the API server
//! defines it. k8s-openapi only carries the types, so the few rules live here.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Why a selector cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("unknown operator '{0}' for key '{1}': use In, NotIn, Exists or DoesNotExist")]
    Operator(String, String),
    #[error("operator {0} for key '{1}' needs at least one value")]
    NeedsValues(String, String),
    #[error("operator {0} for key '{1}' takes no values")]
    NoValues(String, String),
}

/// Checks that every expression of the selector is well formed.
pub fn check(sel: &LabelSelector) -> Result<(), SelectorError> {
    for e in sel.match_expressions.iter().flatten() {
        let n = e.values.as_ref().map_or(0, Vec::len);
        match e.operator.as_str() {
            "In" | "NotIn" if n == 0 => {
                return Err(SelectorError::NeedsValues(
                    e.operator.clone(),
                    e.key.clone(),
                ));
            }
            "Exists" | "DoesNotExist" if n > 0 => {
                return Err(SelectorError::NoValues(e.operator.clone(), e.key.clone()));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => return Err(SelectorError::Operator(other.to_string(), e.key.clone())),
        }
    }
    Ok(())
}

/// Whether `labels` satisfy `sel`. An empty selector matches everything; a malformed one nothing.
pub fn matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    if check(sel).is_err() {
        return false;
    }
    let by_labels = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    by_labels
        && sel.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let got = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => got.is_some_and(|g| values.contains(g)),
                "NotIn" => got.is_none_or(|g| !values.contains(g)),
                "Exists" => got.is_some(),
                "DoesNotExist" => got.is_none(),
                _ => false,
            }
        })
}

/// MetalLB's list semantics: an empty list selects everything; otherwise any selector may match.
pub fn any_matches(sels: &[LabelSelector], labels: &BTreeMap<String, String>) -> bool {
    sels.is_empty() || sels.iter().any(|s| matches(s, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: (!values.is_empty())
                    .then(|| values.iter().map(|s| s.to_string()).collect()),
            }]),
            match_labels: None,
        }
    }

    #[test]
    fn operators() {
        let l = labels(&[("zone", "a"), ("gpu", "yes")]);
        assert!(matches(&LabelSelector::default(), &l));
        assert!(matches(&expr("zone", "In", &["a", "b"]), &l));
        assert!(!matches(&expr("zone", "In", &["b"]), &l));
        assert!(matches(&expr("zone", "NotIn", &["b"]), &l));
        assert!(matches(&expr("rack", "NotIn", &["b"]), &l));
        assert!(matches(&expr("gpu", "Exists", &[]), &l));
        assert!(!matches(&expr("gpu", "DoesNotExist", &[]), &l));
        let ml = LabelSelector {
            match_labels: Some(labels(&[("zone", "a")])),
            match_expressions: None,
        };
        assert!(matches(&ml, &l));
        assert!(!matches(&ml, &labels(&[("zone", "b")])));
    }

    #[test]
    fn malformed_selectors_match_nothing_and_explain() {
        let l = labels(&[("zone", "a")]);
        for bad in [
            expr("zone", "Equals", &["a"]),
            expr("zone", "In", &[]),
            expr("zone", "Exists", &["a"]),
        ] {
            assert!(!matches(&bad, &l));
            assert!(check(&bad).is_err());
        }
        assert!(any_matches(&[], &l));
    }
}
