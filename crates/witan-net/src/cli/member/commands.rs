//! The member's commands, one per line (from stdin or a script):
//!
//! ```text
//! create <conversation>                    create it, with this member as steward
//! join <conversation>                      ask to join (the members vote)
//! say <conversation> <text…>               send a chat message
//! remove <conversation> <member id>        propose removing a member
//! vote <conversation> <proposal> yes|no    vote on an open proposal
//! leave <conversation>                     leave (a vote when others remain)
//! status <conversation>                    print the state, members, stewards and history
//! catch-up                                 catch up from the store now
//! sleep <ms>                               (scripts) wait before the next line
//! quit                                     stop (once the outbox reached the network, 20 s at most)
//! ```
//!
//! Blank lines and lines starting with `#` are ignored. Each command answers with one line,
//! `{"ok": …}` or `{"error": …}`.

use serde_json::{Value, json};
use witan::client::{ConversationSettings, WitanClient};

use super::super::lines;
use crate::member::NetTransport;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create(String),
    Join(String),
    Say(String, String),
    Remove(String, String),
    Vote(String, u64, bool),
    Leave(String),
    Status(String),
    CatchUp,
    Sleep(u64),
    Quit,
    Nothing,
}

impl Command {
    pub fn parse(line: &str) -> Result<Command, String> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return Ok(Command::Nothing);
        }
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        let mut words = rest.split_whitespace();
        let mut word = |what: &str| {
            words
                .next()
                .map(str::to_string)
                .ok_or_else(|| format!("{verb}: missing {what}"))
        };
        Ok(match verb {
            "create" => Command::Create(word("conversation")?),
            "join" => Command::Join(word("conversation")?),
            "say" => {
                let conversation = word("conversation")?;
                let text = rest.trim_start()[conversation.len()..].trim().to_string();
                if text.is_empty() {
                    return Err("say: missing text".into());
                }
                Command::Say(conversation, text)
            }
            "remove" => Command::Remove(word("conversation")?, word("member id")?),
            "vote" => {
                let conversation = word("conversation")?;
                let proposal = word("proposal")?
                    .parse()
                    .map_err(|_| "vote: the proposal is a number".to_string())?;
                let approve = match word("yes or no")?.as_str() {
                    "yes" => true,
                    "no" => false,
                    other => return Err(format!("vote: {other:?} is not yes or no")),
                };
                Command::Vote(conversation, proposal, approve)
            }
            "leave" => Command::Leave(word("conversation")?),
            "status" => Command::Status(word("conversation")?),
            "catch-up" => Command::CatchUp,
            "sleep" => Command::Sleep(
                word("milliseconds")?
                    .parse()
                    .map_err(|_| "sleep: milliseconds are a number".to_string())?,
            ),
            "quit" => Command::Quit,
            other => return Err(format!("unknown command {other:?}")),
        })
    }
}

/// Runs one command; returns its answer line (`None` for nothing to say).
pub fn execute(
    command: Command,
    client: &WitanClient,
    net: &NetTransport,
    settings: &ConversationSettings,
) -> Option<Value> {
    let result: Result<Value, String> = match command {
        Command::Create(c) => client
            .create_conversation(c.clone(), settings.clone())
            .map(|info| json!({"ok": "create", "conversation": c, "epoch": info.epoch}))
            .map_err(|e| e.to_string()),
        Command::Join(c) => client
            .request_to_join(c.clone())
            .map(|()| json!({"ok": "join", "conversation": c}))
            .map_err(|e| e.to_string()),
        Command::Say(c, text) => client
            .send_message(c, text.into_bytes())
            .map(|id| json!({"ok": "say", "message_id": id}))
            .map_err(|e| e.to_string()),
        Command::Remove(c, member) => client
            .propose_removal(c, member)
            .map(|id| json!({"ok": "remove", "proposal": id}))
            .map_err(|e| e.to_string()),
        Command::Vote(c, proposal, approve) => client
            .vote(c, proposal, approve)
            .map(|()| json!({"ok": "vote", "proposal": proposal, "approve": approve}))
            .map_err(|e| e.to_string()),
        Command::Leave(c) => client
            .leave(c)
            .map(|()| json!({"ok": "leave"}))
            .map_err(|e| e.to_string()),
        Command::Status(c) => status(client, &c),
        Command::CatchUp => net
            .catch_up()
            .map(|r| json!({"ok": "catch_up", "pages": r.pages, "packets": r.packets}))
            .map_err(|e| e.to_string()),
        Command::Sleep(_) | Command::Quit | Command::Nothing => return None,
    };
    Some(result.unwrap_or_else(|e| json!({"error": e})))
}

fn status(client: &WitanClient, conversation: &str) -> Result<Value, String> {
    let info = client
        .conversation(conversation.to_string())
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no conversation {conversation:?}"))?;
    let messages = client
        .messages(conversation.to_string(), None, 10_000)
        .map_err(|e| e.to_string())?;
    let authenticator = client.epoch_authenticator(conversation.to_string()).ok();
    Ok(lines::status(&info, &messages, authenticator.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_mistakes_are_explained() {
        assert_eq!(
            Command::parse("say club hello  there ").unwrap(),
            Command::Say("club".into(), "hello  there".into())
        );
        assert_eq!(
            Command::parse("vote club 42 no").unwrap(),
            Command::Vote("club".into(), 42, false)
        );
        assert_eq!(Command::parse("  # note").unwrap(), Command::Nothing);
        assert_eq!(Command::parse("catch-up").unwrap(), Command::CatchUp);
        assert_eq!(Command::parse("sleep 250").unwrap(), Command::Sleep(250));
        assert!(Command::parse("say club").is_err());
        assert!(Command::parse("vote club x yes").is_err());
        assert!(Command::parse("vote club 1 maybe").is_err());
        assert!(Command::parse("remove club").is_err());
        assert!(Command::parse("dance").is_err());
    }
}
