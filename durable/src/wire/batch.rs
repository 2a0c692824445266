//! A `batch` frame (several frames in one message, to be handled in order) built from frames
//! that are already JSON text, so a broadcast never serialises an update twice.

/// A `batch` frame built from frames that are already serialised (each is JSON text of one
/// frame), so a broadcast never serialises an update twice.
pub fn batch_json(frames: &[&str]) -> String {
    let mut out = String::with_capacity(frames.iter().map(|f| f.len() + 1).sum::<usize>() + 28);
    out.push_str(BATCH_PREFIX);
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(f);
    }
    out.push_str(BATCH_SUFFIX);
    out
}

/// A `batch` frame is this, the frames' JSON joined by commas, and [`BATCH_SUFFIX`]; the hub's
/// JavaScript send loop is handed both, so the shape is written down once.
pub const BATCH_PREFIX: &str = r#"{"type":"batch","frames":["#;
pub const BATCH_SUFFIX: &str = "]}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::protocol::{Channel, ErrorCode, ServerFrame};

    #[test]
    fn batch_json_is_a_batch_frame() {
        let a = ServerFrame::Unsubscribed { channel: Channel::btc(), reason: None };
        let b = ServerFrame::error(ErrorCode::BadJson, "x");
        let text = batch_json(&[&a.to_json(), &b.to_json()]);
        assert_eq!(
            serde_json::from_str::<ServerFrame>(&text).unwrap(),
            ServerFrame::Batch { frames: vec![a.clone(), b] }
        );
        assert_eq!(
            text,
            ServerFrame::Batch { frames: vec![a.clone(), ServerFrame::error(ErrorCode::BadJson, "x")] }.to_json()
        );
    }
}
