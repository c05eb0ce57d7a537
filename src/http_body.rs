//! Reading a response body from another party within a cap: the one way `slack` (Slack's
//! answers) and `feed` (calendar feeds) read a body, so that no server, broken or hostile,
//! can make the daemon buffer without bound.

/// Read `response`'s body chunk by chunk; `None` as soon as it grows past `cap` bytes (or
/// declares a length over it, before a byte is read). The rest is never read: dropping the
/// response closes the connection.
pub async fn read_capped(
    response: &mut reqwest::Response,
    cap: u64,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > cap) {
        return Ok(None);
    }
    // A declared length is a hint, not a promise: preallocate at most 1 MiB of it.
    let hint = response.content_length().unwrap_or(0).min(1 << 20);
    let mut body = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > cap {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}
