//! SPIFFE IDs and trust domains as validated newtypes (SPIFFE-ID spec §2).

use std::fmt;
use std::str::FromStr;

/// A SPIFFE trust domain, e.g. `cluster.local`: lowercase letters, digits, `.`, `-`, `_`.
#[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct TrustDomain(String);

/// A SPIFFE ID, e.g. `spiffe://cluster.local/ns/prod/sa/api`.
#[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
pub struct SpiffeId {
    id: String,
    /// Byte offset where the path starts (after the trust domain).
    path_at: usize,
}

/// Why a string is not a SPIFFE ID or trust domain; the message says what was expected.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum SpiffeError {
    /// Missing `spiffe://`.
    #[error("expected a SPIFFE ID starting with \"spiffe://\"")]
    Scheme,
    /// Empty or badly formed trust domain.
    #[error(
        "the trust domain must be non-empty and use only lowercase letters, digits, '.', '-' and '_'"
    )]
    TrustDomain,
    /// Bad path segment.
    #[error(
        "path segments must be non-empty, not \".\" or \"..\", and use only letters, digits, '.', '-' and '_'"
    )]
    Path,
    /// Longer than the spec allows.
    #[error("longer than 2048 bytes")]
    TooLong,
}

const MAX_LEN: usize = 2048;

impl TrustDomain {
    /// The trust domain as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TrustDomain {
    type Err = SpiffeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Tolerate the `spiffe://td` form people paste from Istio's mesh config.
        let td = s.strip_prefix("spiffe://").unwrap_or(s);
        if td.len() > 255 {
            return Err(SpiffeError::TooLong);
        }
        if td.is_empty()
            || !td
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        {
            return Err(SpiffeError::TrustDomain);
        }
        Ok(Self(td.to_owned()))
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl SpiffeId {
    /// The full ID.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The trust domain part (`cluster.local`).
    pub fn trust_domain(&self) -> &str {
        &self.id["spiffe://".len()..self.path_at]
    }

    /// The path part (`/ns/prod/sa/api`), possibly empty.
    pub fn path(&self) -> &str {
        &self.id[self.path_at..]
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_LEN {
            return Err(SpiffeError::TooLong);
        }
        let rest = s.strip_prefix("spiffe://").ok_or(SpiffeError::Scheme)?;
        let (td, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if td.is_empty() || td.starts_with("spiffe:") {
            return Err(SpiffeError::TrustDomain);
        }
        td.parse::<TrustDomain>()?;
        if !path.is_empty() {
            for seg in path[1..].split('/') {
                let ok_chars = seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
                if seg.is_empty() || seg == "." || seg == ".." || !ok_chars {
                    return Err(SpiffeError::Path);
                }
            }
        }
        Ok(Self {
            id: s.to_owned(),
            path_at: "spiffe://".len() + td.len(),
        })
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl serde::Serialize for TrustDomain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl serde::Serialize for SpiffeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        for s in [
            "spiffe://cluster.local/ns/prod/sa/api",
            "spiffe://example.org",
            "spiffe://td_1-x.io/a/b.c/d-e_f",
        ] {
            let id: SpiffeId = s.parse().unwrap();
            assert_eq!(id.to_string(), s);
        }
        let id: SpiffeId = "spiffe://cluster.local/ns/prod/sa/api".parse().unwrap();
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.path(), "/ns/prod/sa/api");
    }

    #[test]
    fn rejects_malformed_ids() {
        let cases = [
            ("http://cluster.local/ns/a", SpiffeError::Scheme),
            ("spiffe://", SpiffeError::TrustDomain),
            ("spiffe:///ns/a", SpiffeError::TrustDomain),
            ("spiffe://Cluster.local/ns/a", SpiffeError::TrustDomain),
            ("spiffe://td:8080/ns/a", SpiffeError::TrustDomain),
            ("spiffe://user@td/ns/a", SpiffeError::TrustDomain),
            ("spiffe://td/ns//a", SpiffeError::Path),
            ("spiffe://td/ns/a/", SpiffeError::Path),
            ("spiffe://td/ns/../a", SpiffeError::Path),
            ("spiffe://td/ns/a?x=1", SpiffeError::Path),
            ("spiffe://td/ns/a#f", SpiffeError::Path),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<SpiffeId>().unwrap_err(), want, "{s}");
        }
        let long = format!("spiffe://td/{}", "a".repeat(MAX_LEN));
        assert_eq!(long.parse::<SpiffeId>().unwrap_err(), SpiffeError::TooLong);
    }

    #[test]
    fn trust_domains() {
        assert_eq!(
            "cluster.local".parse::<TrustDomain>().unwrap().as_str(),
            "cluster.local"
        );
        assert_eq!(
            "spiffe://cluster.local"
                .parse::<TrustDomain>()
                .unwrap()
                .as_str(),
            "cluster.local"
        );
        assert!("".parse::<TrustDomain>().is_err());
        assert!("UPPER".parse::<TrustDomain>().is_err());
        assert!("td/path".parse::<TrustDomain>().is_err());
    }
}
