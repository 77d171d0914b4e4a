//! Inputs from an HTTP JSON source: an `[inputs]` entry may be an `http://` or `https://` URL instead of a file. The
//! observe stage fetches it once, digests the bytes and records them, so the rest of the epoch (and anyone
//! recomputing the report) uses exactly what was fetched. The source is treated as hostile: no redirects, a
//! 30-second timeout, at most [`MAX_BYTES`], UTF-8 only, and what it says is parsed by the same strict readers as a
//! file (a project's payout address still comes only from its `address` field). Connection failures, timeouts and
//! 429/5xx answers are retried three times with backoff from 200 ms; anything else is an error that records
//! nothing.

use std::time::Duration;

/// The largest body accepted.
pub const MAX_BYTES: usize = 64 << 20;

/// Whether an input names a URL rather than a file.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Fetches `url` (GET) under the limits above.
pub fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("{url}: {e}"))?;
        let mut delay = Duration::from_millis(200);
        for attempt in 0..4 {
            let last = attempt == 3;
            let mut resp = match client.get(url).send().await {
                Ok(r) => r,
                Err(e) if !last && (e.is_connect() || e.is_timeout()) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    continue;
                }
                Err(e) => return Err(format!("{url}: {e}")),
            };
            let status = resp.status();
            if !status.is_success() {
                if !last && (status.as_u16() == 429 || status.is_server_error()) {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    continue;
                }
                return Err(format!("{url}: the source answered {status}"));
            }
            if resp.content_length().is_some_and(|n| n > MAX_BYTES as u64) {
                return Err(format!("{url}: the body is larger than {MAX_BYTES} bytes"));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BYTES {
                    return Err(format!("{url}: the body is larger than {MAX_BYTES} bytes"));
                }
            }
            return Ok(body);
        }
        Err(format!("{url}: no answer after 4 attempts"))
    })
}
