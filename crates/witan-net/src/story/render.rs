//! The story's lines for people: each JSON line a process prints, as a short sentence with
//! member ids replaced by names. Lines that only matter to programs (status answers, empty
//! catch-ups, acknowledgements) are left out.

use std::collections::BTreeMap;

use serde_json::Value;

/// Member id -> name.
pub type Names = BTreeMap<String, String>;

fn name(names: &Names, id: &Value) -> String {
    let id = id.as_str().unwrap_or("?");
    names
        .get(id)
        .cloned()
        .unwrap_or_else(|| id.chars().take(8).collect())
}

fn names_of(names: &Names, ids: &Value) -> String {
    let list: Vec<String> = ids
        .as_array()
        .map(|a| a.iter().map(|id| name(names, id)).collect())
        .unwrap_or_default();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

fn short_peer(v: &Value) -> String {
    let s = v.as_str().unwrap_or("?");
    format!("peer …{}", &s[s.len().saturating_sub(6)..])
}

/// The sentence for one line, or `None` to leave it out.
pub fn sentence(line: &Value, names: &Names) -> Option<String> {
    if let Some(kind) = line.get("node").and_then(Value::as_str) {
        return node(kind, line);
    }
    if let Some(kind) = line.get("net").and_then(Value::as_str) {
        return net(kind, line);
    }
    if let Some(kind) = line.get("event").and_then(Value::as_str) {
        return event(kind, line, names);
    }
    if let Some(ready) = line.get("ready") {
        let id = ready["member_id"].as_str().unwrap_or("?");
        return Some(format!(
            "ready: member id {}…, database {}",
            id.chars().take(8).collect::<String>(),
            ready["database"].as_str().unwrap_or("?")
        ));
    }
    if let Some(ok) = line.get("ok").and_then(Value::as_str) {
        return match ok {
            "vote" => Some(format!(
                "votes {} on proposal {}",
                if line["approve"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                },
                line["proposal"]
            )),
            "remove" => Some(format!(
                "proposes the removal (proposal {})",
                line["proposal"]
            )),
            _ => None,
        };
    }
    if let Some(error) = line.get("error") {
        return Some(format!("error: {}", error.as_str().unwrap_or("?")));
    }
    line.get("stderr")
        .or_else(|| line.get("raw"))
        .and_then(Value::as_str)
        .map(|s| format!("| {s}"))
}

fn node(kind: &str, line: &Value) -> Option<String> {
    Some(match kind {
        "listening" => format!("listening on {}", line["address"].as_str().unwrap_or("?")),
        "connected" => format!("connection from {}", short_peer(&line["peer"])),
        "disconnected" => format!("{} went away", short_peer(&line["peer"])),
        "stored" => format!(
            "stored {} bytes on {}",
            line["bytes"],
            line["content_topic"].as_str().unwrap_or("?")
        ),
        "answered" if line["messages"].as_u64().unwrap_or(0) > 0 => format!(
            "answered a history query of {}: {} messages",
            short_peer(&line["peer"]),
            line["messages"]
        ),
        "refused" => format!("refused: {}", line["reason"].as_str().unwrap_or("?")),
        "pruned" => format!("pruned {} old messages", line["messages"]),
        _ => return None,
    })
}

fn net(kind: &str, line: &Value) -> Option<String> {
    Some(match kind {
        "connected" => format!("connected to the node ({})", short_peer(&line["peer"])),
        "disconnected" => format!("lost the connection to {}", short_peer(&line["peer"])),
        "caught_up" if line["packets"].as_u64().unwrap_or(0) > 0 => {
            format!("caught up from the store: {} packets", line["packets"])
        }
        "warning" => format!("network: {}", line["message"].as_str().unwrap_or("?")),
        _ => return None,
    })
}

fn event(kind: &str, line: &Value, names: &Names) -> Option<String> {
    Some(match kind {
        "message" => {
            let m = &line["message"];
            let who = if m["own"].as_bool() == Some(true) {
                "(me)".to_string()
            } else {
                name(names, &m["sender"])
            };
            format!(
                "#{} {who}: \"{}\"",
                m["seq"],
                m["text"].as_str().unwrap_or("")
            )
        }
        "vote_requested" => {
            let target = match &line["target"] {
                Value::Null => String::new(),
                t => format!(" {}", name(names, t)),
            };
            format!(
                "vote requested: {}{target} (proposal {})",
                line["kind"].as_str().unwrap_or("?"),
                line["proposal"]
            )
        }
        "proposal_resolved" => format!(
            "proposal {} {}",
            line["proposal"],
            if line["approved"].as_bool() == Some(true) {
                "approved"
            } else {
                "rejected"
            }
        ),
        "membership_changed" => format!(
            "epoch {}: added [{}], removed [{}]",
            line["epoch"],
            names_of(names, &line["added"]),
            names_of(names, &line["removed"])
        ),
        "state" => format!("state {}", line["state"].as_str().unwrap_or("?")),
        "stewards" => format!("stewards: {}", names_of(names, &line["stewards"])),
        "joined" => "joined the conversation".to_string(),
        "join_expired" => "the join request expired".to_string(),
        "left" => format!(
            "left the conversation ({})",
            line["reason"].as_str().unwrap_or("?")
        ),
        "rejoin_required" => "fell too far behind: must re-join".to_string(),
        "warning" => format!("warning: {}", line["message"].as_str().unwrap_or("?")),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lines_become_sentences_with_names() {
        let names: Names = [("aa".to_string(), "alice".to_string())].into();
        let chat = json!({"event": "message", "message": {"seq": 3, "sender": "aa", "text": "hi", "own": false}});
        assert_eq!(sentence(&chat, &names).unwrap(), "#3 alice: \"hi\"");
        let changed = json!({"event": "membership_changed", "epoch": 2, "added": ["aa", "bbbbbbbbbb"], "removed": []});
        assert_eq!(
            sentence(&changed, &names).unwrap(),
            "epoch 2: added [alice, bbbbbbbb], removed [-]"
        );
        assert_eq!(
            sentence(&json!({"net": "caught_up", "packets": 0}), &names),
            None
        );
        assert_eq!(sentence(&json!({"status": {}}), &names), None);
        assert_eq!(sentence(&json!({"raw": "x"}), &names).unwrap(), "| x");
    }
}
