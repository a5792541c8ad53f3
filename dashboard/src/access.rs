//! Who may see the dashboard: anyone who reaches it, the holders of a token, or one user and
//! password (HTTP basic). Revenue per game is business data. Pure: the decision takes the
//! request's headers and query and nothing else.
use base64::Engine;
use http::HeaderMap;

/// The name of the cookie a token is kept in once the page was opened with `?token=`, so
/// that the page's own API calls carry it.
pub const TOKEN_COOKIE: &str = "inlet_dashboard_token";

/// The dashboard's access rule.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Access {
    /// No check (keep it on loopback or behind a proxy that checks).
    #[default]
    Open,
    /// `Authorization: Bearer <token>`, the `token` query parameter, or its cookie.
    Token(String),
    /// `Authorization: Basic` with this user and password.
    Basic {
        /// The user.
        user: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret itself.
        f.write_str(match self {
            Self::Open => "Open",
            Self::Token(_) => "Token(<redacted>)",
            Self::Basic { .. } => "Basic(<redacted>)",
        })
    }
}

/// What the rule says of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Let it through, and keep the token from the query in a cookie.
    AllowAndRemember(String),
    /// Answer 401 (with a basic-auth challenge for [`Access::Basic`]).
    Deny,
}

impl Access {
    /// Decides on a request with `headers` and the raw `query` string.
    pub fn decide(&self, headers: &HeaderMap, query: Option<&str>) -> Decision {
        let authorization = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        match self {
            Self::Open => Decision::Allow,
            Self::Token(token) => {
                let bearer = authorization.and_then(|a| a.strip_prefix("Bearer ")).map(str::trim);
                let cookie = headers
                    .get_all(http::header::COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(';'))
                    .find_map(|c| c.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='));
                let from_query = query
                    .into_iter()
                    .flat_map(|q| q.split('&'))
                    .find_map(|kv| kv.strip_prefix("token="));
                if [bearer, cookie].into_iter().flatten().any(|t| same(t, token)) {
                    Decision::Allow
                } else if from_query.is_some_and(|t| same(t, token)) {
                    Decision::AllowAndRemember(token.clone())
                } else {
                    Decision::Deny
                }
            }
            Self::Basic { user, password } => {
                let given = authorization
                    .and_then(|a| a.strip_prefix("Basic "))
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
                    .and_then(|b| String::from_utf8(b).ok());
                match given.as_deref().and_then(|g| g.split_once(':')) {
                    Some((u, p)) if same(u, user) & same(p, password) => Decision::Allow,
                    _ => Decision::Deny,
                }
            }
        }
    }
}

/// Compares without stopping at the first difference, so the time taken does not tell how
/// much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
                v.parse().unwrap_or_else(|e| panic!("{e}")),
            );
        }
        h
    }

    #[test]
    fn a_token_is_taken_from_the_header_the_cookie_or_the_query() {
        let a = Access::Token("s3cret".into());
        assert_eq!(a.decide(&headers(&[]), None), Decision::Deny);
        assert_eq!(
            a.decide(&headers(&[("authorization", "Bearer s3cret")]), None),
            Decision::Allow
        );
        assert_eq!(
            a.decide(&headers(&[("authorization", "Bearer s3cre")]), None),
            Decision::Deny
        );
        assert_eq!(
            a.decide(&headers(&[("cookie", "a=b; inlet_dashboard_token=s3cret")]), None),
            Decision::Allow
        );
        assert_eq!(
            a.decide(&headers(&[]), Some("x=1&token=s3cret")),
            Decision::AllowAndRemember("s3cret".into())
        );
        assert_eq!(a.decide(&headers(&[]), Some("token=nope")), Decision::Deny);
    }

    #[test]
    fn basic_auth_needs_both_user_and_password() {
        let a = Access::Basic {
            user: "ana".into(),
            password: "pw".into(),
        };
        let basic = |s: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s));
        assert_eq!(
            a.decide(&headers(&[("authorization", &basic("ana:pw"))]), None),
            Decision::Allow
        );
        assert_eq!(
            a.decide(&headers(&[("authorization", &basic("ana:px"))]), None),
            Decision::Deny
        );
        assert_eq!(
            a.decide(&headers(&[("authorization", &basic("bob:pw"))]), None),
            Decision::Deny
        );
        assert_eq!(a.decide(&headers(&[]), None), Decision::Deny);
        assert_eq!(format!("{a:?}"), "Basic(<redacted>)");
    }

    #[test]
    fn open_lets_everyone_in() {
        assert_eq!(Access::Open.decide(&headers(&[]), None), Decision::Allow);
    }
}
