//! The topics the host must deliver. Each conversation's topics are kept in a small meta
//! row (`topics:<conversation id>`, a JSON list, empty once left), written in the step that
//! changed them; the subscription set is their union. Listing it reads conversation ids and
//! these rows only, never a conversation's state.

use std::collections::BTreeSet;

use crate::store::Step;

use super::error::WitanError;

fn key(conversation_id: &str) -> String {
    format!("topics:{conversation_id}")
}

/// Records the topics of one conversation.
pub(crate) fn save(
    step: &Step<'_>,
    conversation_id: &str,
    topics: &[String],
) -> Result<(), WitanError> {
    let json = serde_json::to_vec(topics)
        .map_err(|e| WitanError::internal(format!("topic list encoding: {e}")))?;
    step.meta_set(&key(conversation_id), &json)?;
    Ok(())
}

/// The recorded topics of one conversation (none if never recorded).
pub(crate) fn load(step: &Step<'_>, conversation_id: &str) -> Result<Vec<String>, WitanError> {
    match step.meta_get(&key(conversation_id))? {
        Some(json) => Ok(serde_json::from_slice(&json)?),
        None => Ok(Vec::new()),
    }
}

/// The union of every conversation's topics, sorted.
pub(crate) fn all(step: &Step<'_>) -> Result<Vec<String>, WitanError> {
    let mut topics = BTreeSet::new();
    for id in step.conversation_ids()? {
        topics.extend(load(step, &id)?);
    }
    Ok(topics.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Database, StoreOptions};

    #[test]
    fn the_union_covers_only_conversations_with_topics() {
        let mut db = Database::open(":memory:", &StoreOptions::default()).unwrap();
        let step = db.step().unwrap();
        step.save_conversation("a", None).unwrap();
        step.save_conversation("b", None).unwrap();
        save(&step, "a", &["t1".into(), "t2".into()]).unwrap();
        save(&step, "b", &["t2".into()]).unwrap();
        assert_eq!(
            all(&step).unwrap(),
            vec!["t1".to_string(), "t2".to_string()]
        );
        save(&step, "a", &[]).unwrap();
        assert_eq!(all(&step).unwrap(), vec!["t2".to_string()]);
        assert_eq!(load(&step, "missing").unwrap(), Vec::<String>::new());
    }
}
