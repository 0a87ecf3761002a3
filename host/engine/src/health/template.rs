//! URLs of the health sources: the `http` source's [`UrlTemplate`] with its `{host}` and
//! `{address}` placeholders, the Alertmanager label [`Matcher`], and the check every
//! configured URL passes (absolute `http(s)`, a host, no credentials).

use url::Url;

/// Parses an absolute `http(s)` URL with a host and no credentials.
pub(super) fn check_http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("`{text}` is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}`: scheme `{}` is not supported (use http or https)",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err(format!("`{text}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{text}`: credentials in the URL are not supported"
        ));
    }
    Ok(url)
}

/// A URL with `{host}` and `{address}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct UrlTemplate {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Host,
    Address,
}

impl UrlTemplate {
    /// Splits the placeholders out and checks the URL is valid once filled in.
    pub(super) fn parse(text: &str) -> Result<UrlTemplate, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{text}`: `{{` without a closing `}}`"))?;
            pieces.push(match &after[..close] {
                "host" => Piece::Host,
                "address" => Piece::Address,
                other => {
                    return Err(format!(
                        "`{text}`: unknown placeholder `{{{other}}}` (use {{host}} or {{address}})"
                    ))
                }
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        let template = UrlTemplate { pieces };
        check_http_url(&template.render("host-id", "192.0.2.1"))
            .map_err(|e| format!("{e} (with placeholders filled in)"))?;
        Ok(template)
    }

    /// Whether the URL names a host, so it is checked once per patched host.
    pub(super) fn is_per_host(&self) -> bool {
        self.pieces.iter().any(|p| !matches!(p, Piece::Text(_)))
    }

    /// The URL for one host. An IPv6 address is bracketed so it can stand as a URL host.
    pub(super) fn render(&self, host: &str, address: &str) -> String {
        let address = match address.parse::<std::net::Ipv6Addr>() {
            Ok(_) => format!("[{address}]"),
            Err(_) => address.to_string(),
        };
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Host => host,
                Piece::Address => address.as_str(),
            })
            .collect()
    }
}

/// One Alertmanager label matcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Matcher {
    label: String,
    op: &'static str,
    value: String,
}

impl Matcher {
    pub(super) fn parse(text: &str) -> Result<Matcher, String> {
        let text = text.trim();
        let end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len());
        let (label, rest) = text.split_at(end);
        if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "`{text}` does not start with a label name (letters, digits, `_`)"
            ));
        }
        let op = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("`{text}`: expected `=`, `!=`, `=~` or `!~` after `{label}`"))?;
        Ok(Matcher {
            label: label.to_string(),
            op,
            value: rest[op.len()..].trim().to_string(),
        })
    }

    /// The matcher as Alertmanager's `filter` parameter wants it, the value quoted.
    pub(super) fn to_filter(&self) -> String {
        let mut quoted = String::with_capacity(self.value.len() + 2);
        for c in self.value.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        format!("{}{}\"{quoted}\"", self.label, self.op)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn templates_render_per_host_and_bracket_ipv6() {
        let t = UrlTemplate::parse("https://{address}:9100/ready?host={host}").unwrap();
        assert!(t.is_per_host());
        assert_eq!(
            t.render("web-1", "10.0.0.5"),
            "https://10.0.0.5:9100/ready?host=web-1"
        );
        assert_eq!(
            t.render("web-2", "fd00::5"),
            "https://[fd00::5]:9100/ready?host=web-2"
        );
        let service = UrlTemplate::parse("http://lb/health").unwrap();
        assert!(!service.is_per_host());
        assert_eq!(service.render("x", "y"), "http://lb/health");
        assert_eq!(
            UrlTemplate::parse("http://{address/").unwrap_err(),
            "`http://{address/`: `{` without a closing `}`"
        );
    }

    #[test]
    fn matchers_become_quoted_filters() {
        let cases = [
            ("severity=critical", "severity=\"critical\""),
            ("env=~prod|staging", "env=~\"prod|staging\""),
            ("team!=batch", "team!=\"batch\""),
            ("job!~node.*", "job!~\"node.*\""),
            ("msg=say \"hi\"\\", "msg=\"say \\\"hi\\\"\\\\\""),
            ("instance=", "instance=\"\""),
        ];
        for (text, filter) in cases {
            assert_eq!(Matcher::parse(text).unwrap().to_filter(), filter, "{text}");
        }
    }
}
