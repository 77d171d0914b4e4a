//! Signals read directly from allonet's own outputs, so that the AI recommendation and the votes feed the
//! plan without a conversion step:
//! - `allonet recommend --json`: `recommendations[].proposal` → `amount` (the model's recommended amount);
//! - `allonet round --json`: `result.lines[].project` → `matched` (the match in base units);
//! - `allonet tally --json`: `result.lines[].choice` → `score` (the quadratic tally);
//! - or a plain JSON object `{ "project": value, … }`.

use serde_json::Value;

/// A parsed signal file: entries in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalFile {
    /// `recommend`, `round`, `tally` or `map`.
    pub source: &'static str,
    pub entries: Vec<(String, f64)>,
}

/// Reads one signal file's bytes.
pub fn parse(bytes: &[u8]) -> Result<SignalFile, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("expected a JSON object")?;
    let rows = |list: &Value, key: &str, val: &str, what: &str| -> Result<Vec<(String, f64)>, String> {
        let list = list.as_array().ok_or_else(|| format!("{what} is not a list"))?;
        list.iter()
            .enumerate()
            .map(|(n, r)| {
                let k = r.get(key).and_then(Value::as_str).ok_or_else(|| format!("{what}[{n}].{key} is missing"))?;
                let x = r.get(val).ok_or_else(|| format!("{what}[{n}].{val} is missing"))?;
                let x = number(x).ok_or_else(|| format!("{what}[{n}].{val} is not a number"))?;
                Ok((k.to_string(), x))
            })
            .collect()
    };
    if let Some(list) = obj.get("recommendations") {
        return Ok(SignalFile { source: "recommend", entries: rows(list, "proposal", "amount", "recommendations")? });
    }
    match obj.get("command").and_then(Value::as_str) {
        Some("round") => {
            let lines = obj.get("result").and_then(|r| r.get("lines")).ok_or("result.lines is missing")?;
            Ok(SignalFile { source: "round", entries: rows(lines, "project", "matched", "result.lines")? })
        }
        Some("tally") => {
            let lines = obj.get("result").and_then(|r| r.get("lines")).ok_or("result.lines is missing")?;
            Ok(SignalFile { source: "tally", entries: rows(lines, "choice", "score", "result.lines")? })
        }
        Some(other) => Err(format!("`allonet {other}` output is not a signal (use recommend, round or tally --json)")),
        None => {
            let entries = obj
                .iter()
                .map(|(k, x)| number(x).map(|x| (k.clone(), x)).ok_or_else(|| format!("`{k}` is not a number")))
                .collect::<Result<Vec<_>, String>>()?;
            Ok(SignalFile { source: "map", entries })
        }
    }
}

/// A JSON number, or a string holding one (base-unit amounts are strings).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_allonet_output_is_read_by_its_shape() {
        let r = parse(br#"{"model_id":"0x1","recommendations":[{"proposal":"A","amount":5.5}]}"#).unwrap();
        assert_eq!((r.source, r.entries.clone()), ("recommend", vec![("A".into(), 5.5)]));
        let r = parse(br#"{"command":"round","result":{"lines":[{"project":"B","matched":"1000"}]}}"#).unwrap();
        assert_eq!((r.source, r.entries.clone()), ("round", vec![("B".into(), 1000.0)]));
        let r = parse(br#"{"command":"tally","result":{"lines":[{"choice":"C","score":2.0}]}}"#).unwrap();
        assert_eq!((r.source, r.entries.clone()), ("tally", vec![("C".into(), 2.0)]));
        assert_eq!(parse(br#"{"D": 1}"#).unwrap().source, "map");
        assert!(parse(br#"{"command":"verify"}"#).unwrap_err().contains("not a signal"));
        assert!(parse(br#"{"recommendations":[{"proposal":"A"}]}"#).unwrap_err().contains("amount is missing"));
    }
}
