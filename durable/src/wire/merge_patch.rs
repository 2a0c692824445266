//! RFC 7386 JSON merge patches: the `patch` of a `delta` frame, built from a channel's previous
//! value and its new one, and applied the way a client applies it (used by the tests, and the
//! reference for `static/client/tickwire-client.js`).
//!
//! A merge patch cannot say "set this member to null" (null means "remove it"), so a new value
//! holding null inside an object that changed has no patch: [`diff`] returns `None` and the
//! hub sends the full update instead.

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`, or `None` when no merge patch can express it.
/// Objects are compared member by member; anything else that differs is replaced whole.
pub fn diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            for (key, value) in new {
                match old.get(key) {
                    Some(before) if before == value => {}
                    Some(before @ Value::Object(_)) if value.is_object() => {
                        patch.insert(key.clone(), diff(before, value)?);
                    }
                    _ => {
                        patch.insert(key.clone(), replacement(value)?);
                    }
                }
            }
            Some(Value::Object(patch))
        }
        // A value that is not an object replaces the target whole; a patch that is not an
        // object is taken as the new value itself, nulls inside arrays included.
        (_, new) if !new.is_object() => Some(new.clone()),
        (_, new) => replacement(new),
    }
}

/// `value` as a member of a patch, where it replaces what was there: an object in a patch is
/// merged into the target rather than replacing it, and nulls in it delete, so it must hold
/// no null member at any depth. Merged into an absent or non-object member, it ends up equal
/// to `value` (apply drops nothing from an empty object but null members).
fn replacement(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(members) => members.values().all(no_null_members).then(|| value.clone()),
        other => Some(other.clone()),
    }
}

fn no_null_members(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Object(members) => members.values().all(no_null_members),
        _ => true,
    }
}

/// Applies `patch` to `target` as RFC 7386 says.
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in members {
            if value.is_null() {
                map.remove(key);
            } else {
                apply(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(old: Value, new: Value) -> Option<Value> {
        let patch = diff(&old, &new)?;
        let mut got = old;
        apply(&mut got, &patch);
        assert_eq!(got, new, "patch {patch}");
        Some(patch)
    }

    #[test]
    fn a_patch_carries_only_what_changed() {
        let old = json!({"coins": {"bitcoin": {"price_usd": 1.0, "cap": 5}, "eth": {"price_usd": 2.0}}, "total": 9});
        let new = json!({"coins": {"bitcoin": {"price_usd": 1.5, "cap": 5}, "eth": {"price_usd": 2.0}}, "total": 9});
        assert_eq!(round_trip(old.clone(), new), Some(json!({"coins": {"bitcoin": {"price_usd": 1.5}}})));
        assert_eq!(round_trip(old.clone(), old), Some(json!({})), "nothing changed");
    }

    #[test]
    fn removed_members_become_null_and_other_types_are_replaced() {
        assert_eq!(round_trip(json!({"a": 1, "b": 2}), json!({"a": 1})), Some(json!({"b": null})));
        assert_eq!(round_trip(json!({"a": [1, 2]}), json!({"a": [1, null]})), Some(json!({"a": [1, null]})));
        assert_eq!(round_trip(json!({"a": 1}), json!({"a": {"b": 2}})), Some(json!({"a": {"b": 2}})));
        assert_eq!(round_trip(json!({"a": {"b": 2}}), json!({"a": 3})), Some(json!({"a": 3})));
        assert_eq!(round_trip(json!([1]), json!({"x": 1})), Some(json!({"x": 1})));
        assert_eq!(round_trip(json!({"x": 1}), json!(7)), Some(json!(7)));
        assert_eq!(round_trip(json!(null), json!("s")), Some(json!("s")));
    }

    #[test]
    fn nulls_a_patch_cannot_express_give_no_patch() {
        assert_eq!(diff(&json!({"a": 1}), &json!({"a": null})), None);
        assert_eq!(diff(&json!({}), &json!({"a": {"b": null}})), None);
        assert_eq!(diff(&json!({"a": {"b": 1}}), &json!({"a": {"b": null}})), None);
        assert_eq!(diff(&json!(1), &json!({"a": null})), None);
        // An unchanged null is fine: the patch does not mention it.
        assert_eq!(round_trip(json!({"a": null, "b": 1}), json!({"a": null, "b": 2})), Some(json!({"b": 2})));
    }

    #[test]
    fn apply_follows_the_rfc_examples() {
        // RFC 7386, appendix A (a selection).
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            (json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ];
        for (mut target, patch, want) in cases {
            apply(&mut target, &patch);
            assert_eq!(target, want, "patch {patch}");
        }
    }
}
