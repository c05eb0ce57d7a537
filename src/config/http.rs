//! `[http]` (SPEC §7): where the daemon serves `/metrics`, `/healthz` and `/readyz`, and
//! whether its per-token series carry the token's name.

use std::net::SocketAddr;

use super::walk::{shown, Ctx, Value};

/// Keys of `[http]`.
pub(crate) const HTTP_KEYS: &[&str] = &["listen", "token_labels"];

/// `[http]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Http {
    /// `listen`: the address the server binds; `None` (the default) serves nothing. Port 0
    /// takes a free port, which the daemon logs once bound.
    pub listen: Option<SocketAddr>,
    /// `token_labels`: `requests_total` and `throttle_wait_seconds_total` also carry a
    /// `token` label (the token's name). Off by default: 10,000 tokens would make hundreds
    /// of thousands of series.
    pub token_labels: bool,
}

/// `[http]`: problems are recorded in `ctx`; a `listen` that is not loopback is a warning
/// (located, as `file:line:col: …`) pushed onto `warnings`.
pub(crate) fn http(ctx: &mut Ctx<'_>, v: &Value<'_>, warnings: &mut Vec<String>) -> Http {
    let mut h = Http::default();
    let Some(t) = ctx.table("http", "a table ([http])", v) else {
        return h;
    };
    ctx.unknown_keys(t, HTTP_KEYS, "[http]");
    if let Some(b) = t
        .get("token_labels")
        .and_then(|v| ctx.boolean("[http] token_labels", v))
    {
        h.token_labels = b;
    }
    let Some(v) = t.get("listen") else {
        return h;
    };
    let Some(text) = ctx.non_empty("[http] listen", v) else {
        return h;
    };
    match parse_listen(text) {
        Ok(addr) => {
            if !addr.ip().is_loopback() {
                warnings.push(format!(
                    "{}: [http] listen {addr} is not a loopback address: /metrics, /healthz \
                     and /readyz are open to the network (they carry rule, token and \
                     calendar names); listen on 127.0.0.1 unless a firewall or a proxy guards \
                     the port",
                    ctx.location(&v.span())
                ));
            }
            h.listen = Some(addr);
        }
        Err(why) => ctx.error(&v.span(), why),
    }
    h
}

/// `listen`: an IP address and a port, `"127.0.0.1:9464"` or `"[::1]:9464"`; no host name
/// (it would be resolved to who knows which addresses) and no bare port.
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse::<SocketAddr>().map_err(|_| {
        format!(
            "[http] listen {} is not IP:PORT; write an IP address and a port, e.g. \
             \"127.0.0.1:9464\" or \"[::1]:9464\" (no host name)",
            shown(text)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_is_an_ip_and_a_port() {
        for ok in ["127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0", " 10.0.0.1:80 "] {
            assert!(parse_listen(ok).is_ok(), "{ok}");
        }
        for bad in [
            "localhost:9464",
            "9464",
            ":9464",
            "127.0.0.1",
            "127.0.0.1:99999",
            "::1:9464",
            "http://127.0.0.1:9464",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }
}
