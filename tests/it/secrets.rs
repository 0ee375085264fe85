//! The private key never leaves the agent (issue 7, item 4).
//!
//! The agent binary runs with `RUST_LOG=trace` on a real identity, probes real mTLS
//! peers (TLS 1.3 and 1.2, a peer that refuses our certificate, and its own `[serve]`
//! listener, so the key signs on the client and on the server side), and then has its
//! key file replaced by each broken form below: garbage, the DER instead
//! of PEM, a truncated PEM, corrupt base64, a key of another type, a key of another
//! certificate, a directory, a dangling symlink, a symlink loop, no file at all — once
//! while it never had a valid identity (the errors then reach every sink: probe details,
//! `/readyz`, the status page, the `[serve]` log) and once while it keeps a valid one.
//! `check` and `probe` get the same files. Everything the agent and the commands write
//! (stderr and stdout byte for byte, `/metrics`, `/api/v1/edges`, `/`, `/readyz`,
//! `/healthz`, a 404, the `[serve]` answers and what refused clients receive, also the
//! raw TLS bytes) is searched for every form of every key the agent was given.
//!
//! What is searched for ([`Needles`]): every 16-byte window of the PKCS#8 DER holding at
//! least 8 secret bytes, as raw bytes, lowercase and uppercase hex, a Rust `Debug` byte
//! list (`48, 129, …`, how `Vec<u8>` and rustls-pki-types' PEM errors print) and
//! `escape_ascii` text; the same DER as base64 (standard and URL-safe) at each of the
//! three alignments a leaked slice can start at (20-character windows, so a partial leak
//! is caught, and padding does not matter), also as a `Debug` byte list; the private
//! scalar alone (EC scalar, Ed25519 seed, RSA `d`) in base64 at its three alignments;
//! every base64 line of the key file that encodes secret bytes, and the whole body
//! joined. "Secret" bytes are found by parsing the key (PKCS#8 → ECPrivateKey /
//! RSAPrivateKey / Ed25519 seed): the public key and the fixed ASN.1 header are not
//! secret — the certificate carries the public key, and rustls' trace log prints our
//! certificate — so windows made only of them are not searched for.
//! [`the_search_finds_the_key_in_every_form_it_looks_for`] proves the search finds each
//! form (and a real library error that would leak it) and does not fire on the
//! certificate.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtls_prober::demo::pki::{self, KeyAlg, Leaf, LeafSpec};
use rustls::pki_types::ServerName;
use rustls::{AlertDescription, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use x509_parser::der_parser;

use crate::common::agent::{AgentProcess, BIN, Metrics};
use crate::common::*;

const LONG: Duration = Duration::from_secs(20);
/// Bound on one exchange with the `[serve]` listener.
const BOUND: Duration = Duration::from_secs(10);
const SOURCE: &str = "secrets-node-a";
const HEALTHY: &str = "prod/healthy";

// ---------------------------------------------------------------------------------
// Key material and what to search for
// ---------------------------------------------------------------------------------

/// A private key the agent is given, with where its secret bytes are.
struct SecretKey {
    name: &'static str,
    /// PKCS#8 DER.
    der: Vec<u8>,
    /// The range of `der` that is secret (one contiguous run for every key type).
    secret: Range<usize>,
    /// The private scalar (EC), seed (Ed25519) or private exponent `d` (RSA).
    scalar: Vec<u8>,
    /// The key file as written (PKCS#8 PEM).
    pem: String,
}

impl SecretKey {
    fn of(name: &'static str, leaf: &Leaf) -> Self {
        let der = leaf.key_pkcs8_der().to_vec();
        let (secret, scalar) = secret_parts(&der);
        Self {
            name,
            pem: leaf.key_pem(),
            der,
            secret,
            scalar,
        }
    }

    /// How many bytes of `der[r]` are secret.
    fn secret_bytes_in(&self, r: Range<usize>) -> usize {
        r.end
            .min(self.secret.end)
            .saturating_sub(r.start.max(self.secret.start))
    }
}

/// Offset of `part`, a sub-slice of `whole`, in `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    let offset = (part.as_ptr() as usize)
        .checked_sub(whole.as_ptr() as usize)
        .expect("a sub-slice");
    assert!(offset + part.len() <= whole.len());
    offset
}

/// The secret range of a PKCS#8 key and its private scalar, read from its structure.
fn secret_parts(der: &[u8]) -> (Range<usize>, Vec<u8>) {
    let (_, info) = der_parser::parse_der(der).expect("PKCS#8 PrivateKeyInfo");
    let info = info.as_sequence().expect("PrivateKeyInfo is a SEQUENCE");
    let alg = info[1].as_sequence().unwrap()[0]
        .as_oid()
        .unwrap()
        .to_id_string();
    let private_key = info[2].as_slice().expect("privateKey OCTET STRING");
    let (_, inner) = der_parser::parse_der(private_key).expect("the inner private key");
    let range = |s: &[u8]| {
        let at = offset_in(der, s);
        at..at + s.len()
    };
    match alg.as_str() {
        // id-ecPublicKey: ECPrivateKey { version, privateKey OCTET STRING, [0], [1] publicKey }
        "1.2.840.10045.2.1" => {
            let d = inner.as_sequence().unwrap()[1].as_slice().unwrap();
            (range(d), d.to_vec())
        }
        // id-Ed25519: CurvePrivateKey ::= OCTET STRING (the seed)
        "1.3.101.112" => {
            let seed = inner.as_slice().unwrap();
            (range(seed), seed.to_vec())
        }
        // rsaEncryption: RSAPrivateKey { version, n, e, d, p, q, dP, dQ, qInv }; n and e
        // are in the certificate, everything from d on is secret.
        "1.2.840.113549.1.1.1" => {
            let fields = inner.as_sequence().unwrap();
            let d = fields[3].as_slice().unwrap();
            let q_inv = fields[8].as_slice().unwrap();
            let start = offset_in(der, d);
            let end = offset_in(der, q_inv) + q_inv.len();
            (start..end, d.to_vec())
        }
        other => panic!("unexpected key algorithm {other}"),
    }
}

/// RFC 4648 base64 (`url_safe`: `-_` instead of `+/`).
fn base64(bytes: &[u8], url_safe: bool, pad: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// `{:?}` of a byte slice without the brackets: `48, 129, 135`.
fn debug_list(bytes: &[u8]) -> Vec<u8> {
    let text = format!("{bytes:?}");
    text.as_bytes()[1..text.len() - 1].to_vec()
}

/// A window of the DER is searched for when at least this many of its bytes are secret.
const MIN_SECRET: usize = 8;
const WINDOW: usize = 16;
const FILTER_BITS: u32 = 20;

/// Every form of every key, indexed by its first 8 bytes (a bit filter first, so most
/// positions of a haystack cost one multiplication).
struct Needles {
    items: Vec<(String, Vec<u8>)>,
    by_prefix: HashMap<u64, Vec<usize>>,
    filter: Vec<u64>,
}

fn prefix(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

fn bucket(prefix: u64) -> usize {
    (prefix.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - FILTER_BITS)) as usize
}

impl Needles {
    fn new(keys: &[&SecretKey]) -> Self {
        let mut needles = Self {
            items: Vec::new(),
            by_prefix: HashMap::new(),
            filter: vec![0; (1 << FILTER_BITS) / 64],
        };
        for k in keys {
            needles.add_key(k);
        }
        needles
    }

    fn add(&mut self, what: String, bytes: Vec<u8>) {
        assert!(bytes.len() >= 16, "{what}: too short to be specific");
        let p = prefix(&bytes);
        let b = bucket(p);
        self.filter[b / 64] |= 1 << (b % 64);
        self.by_prefix.entry(p).or_default().push(self.items.len());
        self.items.push((what, bytes));
    }

    fn add_key(&mut self, k: &SecretKey) {
        let name = k.name;
        // The DER itself, and the ways a program renders bytes as text.
        for start in 0..=k.der.len() - WINDOW {
            if k.secret_bytes_in(start..start + WINDOW) < MIN_SECRET {
                continue;
            }
            let w = &k.der[start..start + WINDOW];
            self.add(format!("{name}: DER bytes at {start}"), w.to_vec());
            self.add(format!("{name}: DER hex at {start}"), hex::encode(w).into());
            self.add(
                format!("{name}: DER uppercase hex at {start}"),
                hex::encode_upper(w).into(),
            );
            self.add(format!("{name}: DER Debug list at {start}"), debug_list(w));
            self.add(
                format!("{name}: DER escaped at {start}"),
                w.escape_ascii().to_string().into(),
            );
        }
        // Base64 of the DER and of the scalar alone, at the three alignments a leaked
        // slice can start at: 20 characters are 5 whole groups, 15 bytes.
        for (what, bytes) in [("DER", &k.der), ("private scalar", &k.scalar)] {
            for align in 0..3 {
                for url_safe in [false, true] {
                    let text = base64(&bytes[align..], url_safe, false);
                    let alphabet = if url_safe {
                        "URL-safe base64"
                    } else {
                        "base64"
                    };
                    for group in 0.. {
                        let start = align + 3 * group;
                        if start + 15 > bytes.len() {
                            break;
                        }
                        let secret = if what == "DER" {
                            k.secret_bytes_in(start..start + 15)
                        } else {
                            15
                        };
                        if secret < MIN_SECRET {
                            continue;
                        }
                        let chars = &text.as_bytes()[4 * group..4 * group + 20];
                        self.add(
                            format!("{name}: {what} {alphabet} of bytes at {start}"),
                            chars.to_vec(),
                        );
                        if !url_safe {
                            self.add(
                                format!("{name}: {what} {alphabet} at {start}, as a Debug list"),
                                debug_list(chars),
                            );
                        }
                    }
                }
            }
        }
        // The key file: each base64 line that encodes secret bytes, and the whole body.
        let mut at = 0;
        let mut body = String::new();
        for line in k.pem.lines().filter(|l| !l.starts_with("-----")) {
            let decoded = line.len() / 4 * 3 - line.bytes().filter(|&b| b == b'=').count();
            if k.secret_bytes_in(at..at + decoded) >= MIN_SECRET {
                self.add(
                    format!("{name}: key file line of bytes {at}..{}", at + decoded),
                    line.into(),
                );
                self.add(
                    format!("{name}: key file line at {at}, as a Debug list"),
                    debug_list(line.as_bytes()),
                );
            }
            at += decoded;
            body.push_str(line);
        }
        assert_eq!(at, k.der.len(), "{name}: the PEM body is the DER");
        assert_eq!(
            body,
            base64(&k.der, false, true),
            "{name}: our base64 is PEM's"
        );
        self.add(format!("{name}: the key file's base64 body"), body.into());
        for (url_safe, pad) in [(true, true), (true, false), (false, false)] {
            self.add(
                format!("{name}: whole DER in base64 (url-safe {url_safe}, padded {pad})"),
                base64(&k.der, url_safe, pad).into(),
            );
        }
        self.add(format!("{name}: whole DER"), k.der.clone());
        self.add(format!("{name}: whole DER hex"), hex::encode(&k.der).into());
        self.add(format!("{name}: scalar hex"), hex::encode(&k.scalar).into());
        self.add(
            format!("{name}: scalar uppercase hex"),
            hex::encode_upper(&k.scalar).into(),
        );
    }

    /// The first needle found in `hay`: (offset, what it is).
    fn find(&self, hay: &[u8]) -> Option<(usize, &str)> {
        if hay.len() < 8 {
            return None;
        }
        for i in 0..=hay.len() - 8 {
            let p = prefix(&hay[i..]);
            let b = bucket(p);
            if self.filter[b / 64] & (1 << (b % 64)) == 0 {
                continue;
            }
            for &id in self.by_prefix.get(&p).into_iter().flatten() {
                let (what, needle) = &self.items[id];
                if hay[i..].starts_with(needle) {
                    return Some((i, what));
                }
            }
        }
        None
    }
}

/// Everything the agent or a command wrote, by where it came from.
#[derive(Default)]
struct Sinks(Vec<(String, Vec<u8>)>);

impl Sinks {
    fn add(&mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.0.push((name.into(), bytes.into()));
    }

    /// Asserts that no sink holds any form of any key, also once JSON-decoded (a log line
    /// or an API body may carry bytes as `\u` escapes).
    #[track_caller]
    fn assert_no_key(&self, needles: &Needles) {
        let mut leaks = Vec::new();
        let mut total = 0;
        for (sink, bytes) in &self.0 {
            total += bytes.len();
            for (view, hay) in [
                ("as written", bytes.clone()),
                ("JSON-decoded", json_strings(bytes)),
            ] {
                if let Some((at, what)) = needles.find(&hay) {
                    let from = at.saturating_sub(60);
                    let to = (at + 60).min(hay.len());
                    leaks.push(format!(
                        "{sink} ({view}), byte {at}: {what}\n    …{}…",
                        String::from_utf8_lossy(&hay[from..to])
                    ));
                }
            }
        }
        assert!(
            leaks.is_empty(),
            "private key material in {} of {} outputs:\n{}",
            leaks.len(),
            self.0.len(),
            leaks.join("\n")
        );
        assert!(total > 0, "nothing was collected");
    }
}

/// Every string (and object key) of every line of `bytes` that parses as JSON.
fn json_strings(bytes: &[u8]) -> Vec<u8> {
    fn walk(v: &serde_json::Value, out: &mut Vec<u8>) {
        match v {
            serde_json::Value::String(s) => {
                out.extend_from_slice(s.as_bytes());
                out.push(b'\n');
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'\n');
                    walk(v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) {
            walk(&v, &mut out);
        }
    }
    // A whole body (e.g. /api/v1/edges) that is one JSON document.
    if let Some(body) = http_body(bytes)
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
    {
        walk(&v, &mut out);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------
// The keys and the broken key files
// ---------------------------------------------------------------------------------

/// Our identity (with a `localhost` DNS SAN, so a plain TLS client can verify the
/// `[serve]` listener) and the other keys a broken file may hold.
struct Keys {
    good: Leaf,
    /// Same algorithm, another certificate's key.
    other_p256: Leaf,
    rsa: Leaf,
    ed25519: Leaf,
    p384: Leaf,
}

impl Keys {
    fn new(pki: &Pki) -> Self {
        let issue = |alg| {
            pki.intermediate
                .issue(&LeafSpec::spiffe(CLIENT_ID).with_alg(alg))
                .unwrap()
        };
        Self {
            good: pki
                .intermediate
                .issue(&LeafSpec::spiffe(CLIENT_ID).with_dns("localhost"))
                .unwrap(),
            other_p256: issue(KeyAlg::EcdsaP256),
            rsa: issue(KeyAlg::Rsa2048),
            ed25519: issue(KeyAlg::Ed25519),
            p384: issue(KeyAlg::EcdsaP384),
        }
    }

    fn secrets(&self) -> Vec<SecretKey> {
        vec![
            SecretKey::of("our P-256 key", &self.good),
            SecretKey::of("another P-256 key", &self.other_p256),
            SecretKey::of("an RSA key", &self.rsa),
            SecretKey::of("an Ed25519 key", &self.ed25519),
            SecretKey::of("a P-384 key", &self.p384),
        ]
    }

    fn needles(&self) -> Needles {
        let secrets = self.secrets();
        Needles::new(&secrets.iter().collect::<Vec<_>>())
    }
}

/// What is at the key path.
#[derive(Clone)]
enum Content {
    File(Vec<u8>),
    /// A file with mode 000 (only refused when the test does not run as root).
    NoPermission(Vec<u8>),
    Directory,
    DanglingSymlink,
    SymlinkLoop,
    Missing,
}

#[derive(Clone)]
struct KeyState {
    name: &'static str,
    content: Content,
    /// A fragment of the error the agent must report (proves the path was taken).
    expect: &'static str,
}

impl KeyState {
    fn file(name: &'static str, bytes: impl Into<Vec<u8>>, expect: &'static str) -> Self {
        Self {
            name,
            content: Content::File(bytes.into()),
            expect,
        }
    }
}

/// Whether mode 000 stops this process from reading a file (not for root).
fn permissions_bite(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join("mode-000-probe");
    std::fs::write(&probe, b"x").unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).unwrap();
    let refused = std::fs::read(&probe).is_err();
    std::fs::remove_file(&probe).unwrap();
    refused
}

/// Every broken key file, each with the error it must produce.
fn bad_keys(keys: &Keys, scratch: &Path) -> Vec<KeyState> {
    let pem = keys.good.key_pem();
    let der = keys.good.key_pkcs8_der();
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(body.len() >= 3, "{pem}");
    let mut corrupt = body.clone();
    let broken = format!("{}!!!!{}", &body[1][..10], &body[1][14..]);
    corrupt[1] = &broken;
    let mut garbage = b"\x00\xffnot a key\r\n\xfe\xfd-----BEGIN\x00\n".to_vec();
    garbage.extend((0u32..512).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let mut states = vec![
        KeyState::file(
            "the key as DER, not PEM",
            der.to_vec(),
            "no matching PEM block found",
        ),
        KeyState::file("garbage", garbage, "no matching PEM block found"),
        KeyState::file("an empty file", Vec::new(), "no matching PEM block found"),
        KeyState::file(
            "a truncated PEM",
            &pem.as_bytes()[..pem.len() * 2 / 3],
            "a PEM block has no END line",
        ),
        KeyState::file(
            "corrupt base64 under a valid header",
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                corrupt.join("\n")
            ),
            "a PEM block is not valid base64",
        ),
        KeyState::file(
            "valid base64 of a truncated DER",
            pki::pem("PRIVATE KEY", &der[..der.len() - 20]),
            "cannot be used for signing",
        ),
        // rustls-pki-types' own error would print this line (a line of the key) as a
        // byte list; the agent must only give its length.
        KeyState::file(
            "a BEGIN line made of a line of the key",
            format!(
                "-----BEGIN {}\n{}\n-----END PRIVATE KEY-----\n",
                body[0],
                body[1..].join("\n")
            ),
            "malformed BEGIN line",
        ),
        // … and this label (a line of the key) as the missing END marker.
        KeyState::file(
            "a label made of a line of the key, no END line",
            format!("-----BEGIN {}-----\n{}\n", body[0], body[1..].join("\n")),
            "a PEM block has no END line",
        ),
        KeyState::file(
            "our EC key labelled RSA PRIVATE KEY",
            pki::pem("RSA PRIVATE KEY", der),
            "cannot be used for signing",
        ),
        KeyState::file(
            "the certificate in place of the key",
            keys.good.chain_pem(),
            "no matching PEM block found",
        ),
        KeyState::file(
            "an RSA key",
            keys.rsa.key_pem(),
            "does not match the certificate",
        ),
        KeyState::file(
            "an Ed25519 key",
            keys.ed25519.key_pem(),
            "does not match the certificate",
        ),
        KeyState::file(
            "a P-384 key",
            keys.p384.key_pem(),
            "does not match the certificate",
        ),
        KeyState::file(
            "the key of another certificate",
            keys.other_p256.key_pem(),
            "does not match the certificate",
        ),
        KeyState {
            name: "a dangling symlink",
            content: Content::DanglingSymlink,
            expect: "No such file or directory",
        },
        KeyState {
            name: "a directory",
            content: Content::Directory,
            expect: "not a regular file",
        },
        KeyState {
            name: "a symlink loop",
            content: Content::SymlinkLoop,
            expect: "symbolic links",
        },
        KeyState {
            name: "no file",
            content: Content::Missing,
            expect: "No such file or directory",
        },
    ];
    if permissions_bite(scratch) {
        states.push(KeyState {
            name: "a file with mode 000",
            content: Content::NoPermission(pem.into_bytes()),
            expect: "Permission denied",
        });
    } else {
        eprintln!(
            "note: running as root, mode 000 does not stop a read; the directory, \
             dangling symlink and symlink loop cases stand in for an unreadable file"
        );
    }
    states
}

/// The key path is a symlink flipped atomically (rename over it) to each state's
/// content, as Kubernetes flips `..data`: a reload never sees half a change, so every
/// change is exactly one reload attempt.
struct KeySlot {
    link: PathBuf,
    store: PathBuf,
    n: usize,
}

impl KeySlot {
    fn new(dir: &Path) -> Self {
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap();
        Self {
            link: dir.join("key.pem"),
            store,
            n: 0,
        }
    }

    fn set(&mut self, content: &Content) {
        use std::os::unix::fs::{PermissionsExt, symlink};
        self.n += 1;
        let target = self.store.join(format!("v{}", self.n));
        match content {
            Content::File(bytes) => std::fs::write(&target, bytes).unwrap(),
            Content::NoPermission(bytes) => {
                std::fs::write(&target, bytes).unwrap();
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o000)).unwrap();
            }
            Content::Directory => std::fs::create_dir(&target).unwrap(),
            Content::DanglingSymlink => symlink(self.store.join("nowhere"), &target).unwrap(),
            Content::SymlinkLoop => symlink(&target, &target).unwrap(),
            Content::Missing => {
                let _ = std::fs::remove_file(&self.link);
                return;
            }
        }
        let tmp = self.store.join("link.tmp");
        let _ = std::fs::remove_file(&tmp);
        symlink(&target, &tmp).unwrap();
        std::fs::rename(&tmp, &self.link).unwrap();
    }
}

fn good(keys: &Keys) -> Content {
    Content::File(keys.good.key_pem().into_bytes())
}

// ---------------------------------------------------------------------------------
// The agent process, its endpoints, and clients of its [serve] listener
// ---------------------------------------------------------------------------------

/// The agent binary at `RUST_LOG=trace`, with stdout and stderr kept byte for byte.
/// (`AgentProcess::start` reads stderr as UTF-8 lines, which would stop at the first
/// invalid byte: a raw-byte leak would go unseen and the pipe would then fill up.)
struct RunningAgent {
    process: AgentProcess,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningAgent {
    async fn start(config: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut out_pipe = child.stdout.take().unwrap();
        let err_pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let err_reader = tokio::spawn({
            let (raw, log) = (stderr.clone(), log.clone());
            async move {
                let mut tx = Some(tx);
                let mut lines = BufReader::new(err_pipe);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match lines.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    raw.lock().unwrap().extend_from_slice(&line);
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                        && v["message"] == "listening"
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                    }
                    log.lock().unwrap().push(text);
                }
            }
        });
        let out_reader = tokio::spawn({
            let raw = stdout.clone();
            async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = out_pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    raw.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        let addr = tokio::time::timeout(LONG, rx)
            .await
            .unwrap_or_else(|_| panic!("no \"listening\" line: {:#?}", log.lock().unwrap()))
            .unwrap_or_else(|_| panic!("the agent exited: {:#?}", log.lock().unwrap()))
            .parse()
            .unwrap();
        Self {
            process: AgentProcess { child, addr, log },
            stderr,
            stdout,
            readers: vec![err_reader, out_reader],
        }
    }

    /// SIGTERM, a clean exit, and both pipes drained: (stderr, stdout).
    async fn stop(mut self) -> (Vec<u8>, Vec<u8>) {
        self.process.signal("TERM").await;
        let status = tokio::time::timeout(LONG, self.process.child.wait())
            .await
            .expect("exit after SIGTERM")
            .unwrap();
        assert!(status.success(), "{status}");
        for r in self.readers.drain(..) {
            r.await.unwrap();
        }
        let err = std::mem::take(&mut *self.stderr.lock().unwrap());
        let out = std::mem::take(&mut *self.stdout.lock().unwrap());
        (err, out)
    }
}

/// One HTTP/1.1 GET on a fresh connection; the whole response, head included, as bytes.
async fn raw_get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(BOUND, s.read_to_end(&mut out))
        .await
        .expect("response in time")
        .unwrap();
    out
}

fn http_status(raw: &[u8]) -> u16 {
    std::str::from_utf8(&raw[9..12]).unwrap().parse().unwrap()
}

/// The body of a raw HTTP/1.1 response, de-chunked when it was sent chunked (the
/// agent streams `/metrics` and `/api/v1/edges`).
fn http_body(raw: &[u8]) -> Option<Vec<u8>> {
    if !raw.starts_with(b"HTTP/1.") {
        return None;
    }
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let mut body = &raw[end + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return Some(body.to_vec());
    }
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

const PAGES: [&str; 6] = [
    "/metrics",
    "/api/v1/edges",
    "/",
    "/readyz",
    "/healthz",
    "/no-such-page",
];

/// Every endpoint of the agent's HTTP listener, as bytes, into `sinks`; returns them.
async fn scrape(
    agent: &AgentProcess,
    when: &str,
    sinks: &mut Sinks,
) -> HashMap<&'static str, Vec<u8>> {
    let mut pages = HashMap::new();
    for path in PAGES {
        let raw = raw_get(agent.addr, path).await;
        sinks.add(format!("{when}: GET {path}"), raw.clone());
        pages.insert(path, raw);
    }
    pages
}

fn reloads(m: &Metrics, result: &str) -> f64 {
    m.value("mtls_probe_identity_reloads_total", &[("result", result)])
        .unwrap_or(0.0)
}

/// Waits until the agent counted `count` identity reloads with `result`, then until two
/// more probes of the healthy edge completed (the second started after the reload).
async fn settle(agent: &AgentProcess, result: &str, count: f64) {
    let m = agent
        .wait_metrics(LONG, |m| reloads(m, result) >= count)
        .await;
    assert_eq!(reloads(&m, result), count, "one reload per change");
    let before = m.attempts(HEALTHY);
    agent
        .wait_metrics(LONG, |m| m.attempts(HEALTHY) >= before + 2.0)
        .await;
}

/// Reads through, keeping a copy of every byte that came off the wire.
struct Tap {
    tcp: std::net::TcpStream,
    wire: Vec<u8>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.tcp.read(buf)?;
        self.wire.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// What a client of the `[serve]` listener got.
#[derive(Debug)]
struct Seen {
    /// Every byte received, TLS records included.
    wire: Vec<u8>,
    /// Decrypted application data (HTTP).
    app: Vec<u8>,
    /// The TLS error that ended the exchange, if any.
    tls_error: Option<rustls::Error>,
    /// The I/O error that ended the exchange, if any.
    error: Option<String>,
    /// Whether the server's certificate reached the client.
    saw_server_cert: bool,
}

fn serve_client(
    pki: &Pki,
    cert: Option<&Leaf>,
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.root.cert().clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match cert {
        Some(leaf) => builder
            .with_client_auth_cert(leaf.chain.clone(), leaf.key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A TLS handshake with the `[serve]` listener, then `GET /healthz`, read to the end.
async fn serve_exchange(addr: SocketAddr, config: Arc<ClientConfig>) -> Seen {
    tokio::task::spawn_blocking(move || {
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(BOUND)).unwrap();
        let conn =
            ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
        let mut tls = StreamOwned::new(
            conn,
            Tap {
                tcp,
                wire: Vec::new(),
            },
        );
        let mut app = Vec::new();
        let result = talk(&mut tls, &mut app);
        let tls_error = result.as_ref().err().and_then(|e| {
            e.get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .cloned()
        });
        Seen {
            saw_server_cert: tls.conn.peer_certificates().is_some(),
            wire: std::mem::take(&mut tls.sock.wire),
            app,
            tls_error,
            error: result.err().map(|e| e.to_string()),
        }
    })
    .await
    .unwrap()
}

/// Handshake, request, read to the end.
fn talk(tls: &mut StreamOwned<ClientConnection, Tap>, app: &mut Vec<u8>) -> std::io::Result<()> {
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")?;
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf)? {
            0 => return Ok(()),
            n => app.extend_from_slice(&buf[..n]),
        }
    }
}

/// Plain HTTP to the `[serve]` port.
async fn plaintext_exchange(addr: SocketAddr) -> Vec<u8> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    // The listener closes (after its alert); a reset is as good an answer as a FIN.
    let _ = tokio::time::timeout(BOUND, s.read_to_end(&mut out))
        .await
        .expect("the listener answers a plaintext client in time");
    out
}

/// What a refused client must not see: any part of the `/healthz` answer.
const ABOUT_US: [&[u8]; 5] = [
    b"\"source\"",
    b"\"spiffe_id\"",
    b"peer_spiffe_id",
    b"HTTP/1.",
    SOURCE.as_bytes(),
];

/// A refused client got the TLS alert `alert` and not one byte of HTTP; nothing in what
/// it received names us beyond our certificate.
#[track_caller]
fn assert_refused(what: &str, seen: &Seen, alert: AlertDescription) {
    assert!(
        seen.app.is_empty(),
        "{what}: HTTP bytes reached a refused client: {:?}",
        String::from_utf8_lossy(&seen.app)
    );
    assert_eq!(
        seen.tls_error,
        Some(rustls::Error::AlertReceived(alert)),
        "{what}: {seen:?}"
    );
    for marker in ABOUT_US {
        assert!(
            !contains(&seen.wire, marker),
            "{what}: {:?} in the bytes a refused client received",
            String::from_utf8_lossy(marker)
        );
    }
    // The known limit (docs/security.md): TLS sends the server's certificate before the
    // client's is checked, so a refused client has seen our certificate, and with it
    // our SPIFFE ID. That is all it learns.
    assert!(seen.saw_server_cert, "{what}");
}

/// A client with a valid certificate gets the `/healthz` JSON: the control that shows
/// the markers of [`ABOUT_US`] would be seen if they were sent.
#[track_caller]
fn assert_served(what: &str, seen: &Seen, peer_id: &str) {
    assert!(seen.error.is_none(), "{what}: {seen:?}");
    let text = String::from_utf8_lossy(&seen.app);
    assert!(text.starts_with("HTTP/1.1 200"), "{what}: {text}");
    for fragment in [
        format!("\"source\":\"{SOURCE}\""),
        format!("\"spiffe_id\":\"{CLIENT_ID}\""),
        format!("\"peer_spiffe_id\":\"{peer_id}\""),
    ] {
        assert!(text.contains(&fragment), "{what}: {fragment} not in {text}");
    }
}

/// Our identity's files: chain and bundle as files, the key behind a [`KeySlot`].
struct IdentityFiles {
    cert: PathBuf,
    ca: PathBuf,
    key: KeySlot,
}

impl IdentityFiles {
    fn new(pki: &Pki, keys: &Keys, name: &str) -> Self {
        let dir = pki.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert-chain.pem");
        let ca = dir.join("root-cert.pem");
        std::fs::write(&cert, keys.good.chain_pem()).unwrap();
        std::fs::write(&ca, pki.root.cert_pem()).unwrap();
        Self {
            cert,
            ca,
            key: KeySlot::new(&dir),
        }
    }

    fn toml(&self) -> String {
        format!(
            "[identity]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\nreload = \"200ms\"\ntrust_domain = \"cluster.local\"\n",
            self.cert.display(),
            self.key.link.display(),
            self.ca.display()
        )
    }
}

fn target_toml(name: &str, addr: SocketAddr, spiffe_id: &str) -> String {
    format!(
        "[[target]]\nname = \"{name}\"\naddress = \"{addr}\"\nspiffe_id = \"{spiffe_id}\"\n[target.http]\npath = \"/healthz\"\n"
    )
}

fn agent_toml(id: &IdentityFiles, serve: SocketAddr, targets: &[String]) -> String {
    format!(
        "[agent]\nsource = \"{SOURCE}\"\nlisten = \"127.0.0.1:0\"\ninterval = \"300ms\"\ntimeout = \"300ms\"\n\
         {}[serve]\nlisten = \"{serve}\"\nclient_auth = \"require\"\n{}",
        id.toml(),
        targets.concat()
    )
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The peers the agent probes: STRICT over TLS 1.3 and TLS 1.2 (our key signs in both),
/// and a peer that trusts another root and so refuses our certificate.
struct Peers {
    healthy: PeerServer,
    tls12: PeerServer,
    refuses_us: PeerServer,
}

impl Peers {
    async fn start(pki: &Pki) -> Self {
        let ok = || HttpBehavior::Respond(Response::ok());
        let tls12 = pki.strict(&pki.server_leaf(), &ServerOpts::tls12_only());
        let refuses = server_config(
            &pki.server_leaf(),
            ClientAuth::Required(vec![pki.foreign.cert().clone()]),
            &ServerOpts::default(),
        )
        .unwrap();
        Self {
            healthy: pki.strict_peer(ok()).await,
            tls12: peer(Behavior::Tls {
                config: tls12,
                http: ok(),
            })
            .await,
            refuses_us: peer(Behavior::Tls {
                config: refuses,
                http: ok(),
            })
            .await,
        }
    }

    fn targets(&self, serve: SocketAddr) -> Vec<String> {
        vec![
            target_toml(HEALTHY, self.healthy.addr(), SERVER_ID),
            target_toml("prod/tls12", self.tls12.addr(), SERVER_ID),
            target_toml("prod/refuses-us", self.refuses_us.addr(), SERVER_ID),
            // The agent's own [serve] listener: the same key on both ends.
            target_toml("self/serve", serve, CLIENT_ID),
        ]
    }
}

// ---------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------

/// The lines of a key file that encode at least [`MIN_SECRET`] secret bytes.
fn secret_lines(k: &SecretKey) -> Vec<String> {
    let mut at = 0;
    let mut out = Vec::new();
    for line in k.pem.lines().filter(|l| !l.starts_with("-----")) {
        let decoded = line.len() / 4 * 3 - line.bytes().filter(|&b| b == b'=').count();
        if k.secret_bytes_in(at..at + decoded) >= MIN_SECRET {
            out.push(line.to_owned());
        }
        at += decoded;
    }
    out
}

#[test]
fn the_search_finds_the_key_in_every_form_it_looks_for() {
    let pki = Pki::new();
    let keys = Keys::new(&pki);
    let secrets = keys.secrets();
    let needles = Needles::new(&secrets.iter().collect::<Vec<_>>());
    let found = |what: &str, hay: &[u8]| {
        assert!(
            needles.find(hay).is_some(),
            "{what}: not found in {:?}",
            String::from_utf8_lossy(hay)
        );
    };
    for k in &secrets {
        let s = k.secret.start;
        let name = k.name;
        let der = &k.der;
        // The key file itself, and each of its secret lines alone.
        found(&format!("{name}: key file"), k.pem.as_bytes());
        let secret_line = secret_lines(k)[0].clone();
        found(
            &format!("{name}: a line of the key file"),
            secret_line.as_bytes(),
        );
        // The DER, whole and as a 16-byte slice of the secret at an odd offset, raw and
        // embedded in text.
        found(&format!("{name}: DER"), der);
        let slice = &der[s + 3..s + 19];
        found(
            &format!("{name}: raw slice"),
            &[b"key=", slice, b"\n"].concat(),
        );
        found(
            &format!("{name}: hex slice"),
            format!("error: {} bad", hex::encode(slice)).as_bytes(),
        );
        found(
            &format!("{name}: HEX slice"),
            format!("0x{}", hex::encode_upper(slice)).as_bytes(),
        );
        found(
            &format!("{name}: Debug of the slice"),
            format!("{:?}", slice.to_vec()).as_bytes(),
        );
        found(
            &format!("{name}: escaped slice"),
            format!("b\"{}\"", slice.escape_ascii()).as_bytes(),
        );
        // Base64 of slices at each alignment, both alphabets, padded or not.
        for (i, start) in [s, s + 1, s + 2].into_iter().enumerate() {
            let part = &der[start..start + 17];
            for (url_safe, pad) in [(false, true), (true, false), (true, true)] {
                let text = format!("x{}y", base64(part, url_safe, pad));
                found(
                    &format!("{name}: base64 #{i} {url_safe} {pad}"),
                    text.as_bytes(),
                );
            }
        }
        // The scalar alone: hex, base64.
        found(
            &format!("{name}: scalar hex"),
            hex::encode(&k.scalar).as_bytes(),
        );
        found(
            &format!("{name}: scalar base64"),
            base64(&k.scalar[1..], true, false).as_bytes(),
        );
        // A real library error that would leak: rustls-pki-types prints the offending
        // BEGIN line (here a line of the key) as a byte list.
        let leaky = rustls::pki_types::pem::Error::IllegalSectionStart {
            line: secret_line.as_bytes().to_vec(),
        };
        found(
            &format!("{name}: pki-types' error"),
            leaky.to_string().as_bytes(),
        );
    }
    // No false positives on public material, which the agent may print: the certificate
    // (its public key is also inside the PKCS#8), its hex as rustls' trace log prints
    // it, and the public key alone.
    let cert = keys.good.leaf().as_ref();
    for (what, hay) in [
        ("chain PEM", keys.good.chain_pem().into_bytes()),
        ("certificate DER", cert.to_vec()),
        ("certificate hex", hex::encode(cert).into_bytes()),
        ("certificate Debug", format!("{cert:?}").into_bytes()),
        ("certificate base64", base64(cert, false, true).into_bytes()),
        ("root PEM", pki.root.cert_pem().into_bytes()),
    ] {
        assert_eq!(needles.find(&hay), None, "{what}");
    }
    let good = &secrets[0];
    let public = &good.der[good.secret.end..];
    assert_eq!(
        needles.find(public),
        None,
        "the public key inside the PKCS#8"
    );
    assert_eq!(needles.find(hex::encode(public).as_bytes()), None);
}

#[tokio::test]
async fn the_agent_never_reveals_its_key_on_any_key_error_path() {
    let pki = Pki::new();
    let keys = Keys::new(&pki);
    let needles = keys.needles();
    let peers = Peers::start(&pki).await;
    let serve = free_addr();
    let mut id = IdentityFiles::new(&pki, &keys, "agent-identity");
    let states = bad_keys(&keys, pki.dir.path());
    let config = pki.path("agent.toml");
    std::fs::write(&config, agent_toml(&id, serve, &peers.targets(serve))).unwrap();
    let mut sinks = Sinks::default();
    let client = pki.server_leaf();

    // Phase 1: the agent never had a valid key. Each error is what the probes, /readyz,
    // the status page and the [serve] listener report, so it reaches every sink.
    id.key.set(&states[0].content);
    let agent = RunningAgent::start(&config).await;
    let a = &agent.process;
    for (i, state) in states.iter().enumerate() {
        if i > 0 {
            id.key.set(&state.content);
        }
        settle(a, "failure", i as f64).await;
        let when = format!("never valid, key.pem is {}", state.name);
        let pages = scrape(a, &when, &mut sinks).await;
        let edges =
            String::from_utf8_lossy(&http_body(&pages["/api/v1/edges"]).unwrap()).into_owned();
        let edges: Vec<serde_json::Value> = serde_json::from_str(&edges).unwrap();
        let healthy = edges.iter().find(|e| e["target"] == HEALTHY).unwrap();
        assert_eq!(
            healthy["reason"], "identity_unavailable",
            "{when}: {healthy}"
        );
        let detail = healthy["detail"].as_str().unwrap();
        assert!(detail.contains(state.expect), "{when}: {detail}");
        assert_eq!(http_status(&pages["/readyz"]), 503, "{when}");
        for page in ["/readyz", "/"] {
            let text = String::from_utf8_lossy(&pages[page]);
            assert!(
                text.contains(state.expect),
                "{when}: {page} lacks {:?}",
                state.expect
            );
        }
        let seen = serve_exchange(
            serve,
            serve_client(&pki, Some(&client), &rustls::version::TLS13),
        )
        .await;
        assert!(
            seen.wire.is_empty() && seen.app.is_empty() && seen.error.is_some(),
            "{when}: without an identity [serve] closes at once: {seen:?}"
        );
        sinks.add(format!("{when}: [serve] wire"), seen.wire);
    }
    assert!(
        a.log_text()
            .contains("serve: refusing connections until the identity is usable")
    );

    // Phase 2: a valid key, probes with it on the client side (TLS 1.3, TLS 1.2, refused
    // by a peer) and on the server side ([serve], probed by the agent itself).
    id.key.set(&good(&keys));
    let failures = (states.len() - 1) as f64;
    settle(a, "success", 1.0).await;
    let m = a
        .wait_metrics(LONG, |m| {
            ["prod/healthy", "prod/tls12", "self/serve"]
                .iter()
                .all(|t| m.value("mtls_probe_success", &[("target", t)]) == Some(1.0))
                && m.value(
                    "mtls_probe_failures_total",
                    &[
                        ("target", "prod/refuses-us"),
                        ("reason", "client_cert_rejected"),
                    ],
                )
                .is_some()
        })
        .await;
    assert_eq!(reloads(&m, "failure"), failures);
    let (tls12, serve_info) = (
        m.samples("mtls_probe_tls_info", &[("target", "prod/tls12")])
            .next()
            .unwrap(),
        m.samples("mtls_probe_peer_cert_info", &[("target", "self/serve")])
            .next()
            .unwrap(),
    );
    assert_eq!(tls12.labels.get("version"), Some("TLS 1.2"));
    assert_eq!(serve_info.labels.get("spiffe_id"), Some(CLIENT_ID));
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let seen = serve_exchange(serve, serve_client(&pki, Some(&client), version)).await;
        assert_served("a mesh client", &seen, SERVER_ID);
        sinks.add(
            format!("[serve] answer over {:?}", version.version),
            seen.app,
        );
        sinks.add(
            format!("[serve] wire over {:?}", version.version),
            seen.wire,
        );
        let seen = serve_exchange(serve, serve_client(&pki, None, version)).await;
        assert_refused(
            "a client without a certificate",
            &seen,
            AlertDescription::CertificateRequired,
        );
        sinks.add(
            format!("[serve] refusal over {:?}", version.version),
            seen.wire,
        );
    }
    scrape(a, "valid identity", &mut sinks).await;

    // Phase 3: every broken key again, now while a valid identity is kept.
    for (j, state) in states.iter().enumerate() {
        id.key.set(&state.content);
        settle(a, "failure", failures + 1.0 + j as f64).await;
        let when = format!("identity kept, key.pem is {}", state.name);
        let pages = scrape(a, &when, &mut sinks).await;
        assert_eq!(
            http_status(&pages["/readyz"]),
            200,
            "{when}: the kept identity serves"
        );
        let page = String::from_utf8_lossy(&pages["/"]);
        assert!(page.contains("previous identity is kept"), "{when}");
        assert!(
            page.contains(state.expect),
            "{when}: / lacks {:?}",
            state.expect
        );
        let seen = serve_exchange(
            serve,
            serve_client(&pki, Some(&client), &rustls::version::TLS13),
        )
        .await;
        assert_served(&when, &seen, SERVER_ID);
        sinks.add(format!("{when}: [serve] answer"), seen.app);
        id.key.set(&good(&keys));
        settle(a, "success", 2.0 + j as f64).await;
    }
    let m = a.metrics().await;
    assert_eq!(
        m.value("mtls_probe_success", &[("target", HEALTHY)]),
        Some(1.0)
    );
    scrape(a, "at the end", &mut sinks).await;

    let log = a.log_text();
    for state in &states {
        assert!(
            log.contains(state.expect),
            "the log lacks {:?}",
            state.expect
        );
    }
    assert!(log.contains("keeping the previous identity"));
    // Really at trace level, with rustls' handshake logging on both sides.
    for fragment in ["\"level\":\"TRACE\"", "ClientHello", "certificate-verify"] {
        assert!(log.contains(fragment), "no {fragment:?} in the log");
    }
    let (stderr, stdout) = agent.stop().await;
    sinks.add("agent stderr", stderr);
    sinks.add("agent stdout", stdout);
    sinks.assert_no_key(&needles);
}

#[tokio::test]
async fn serve_refuses_clients_without_a_valid_certificate_and_says_nothing() {
    let pki = Pki::new();
    let keys = Keys::new(&pki);
    let needles = keys.needles();
    let serve = free_addr();
    let mut id = IdentityFiles::new(&pki, &keys, "serve-identity");
    id.key.set(&good(&keys));
    let config = pki.path("serve.toml");
    std::fs::write(
        &config,
        agent_toml(&id, serve, &[target_toml("self/serve", serve, CLIENT_ID)]),
    )
    .unwrap();
    let agent = RunningAgent::start(&config).await;
    // The agent probing its own listener: the key signs on both ends of one handshake.
    agent
        .process
        .wait_metrics(LONG, |m| {
            m.value("mtls_probe_success", &[("target", "self/serve")]) == Some(1.0)
        })
        .await;
    let mut sinks = Sinks::default();
    let member = pki.server_leaf();
    let stranger = pki
        .foreign
        .issue(&LeafSpec::spiffe(
            "spiffe://cluster.local/ns/evil/sa/mallory",
        ))
        .unwrap();
    let expired = pki
        .intermediate
        .issue(&LeafSpec::spiffe("spiffe://cluster.local/ns/prod/sa/old").expired())
        .unwrap();
    let v13 = &rustls::version::TLS13;
    let v12 = &rustls::version::TLS12;

    // Control: a mesh member gets the answer, so the markers below would be seen.
    for version in [v13, v12] {
        let seen = serve_exchange(serve, serve_client(&pki, Some(&member), version)).await;
        assert_served("a mesh member", &seen, SERVER_ID);
        sinks.add(
            format!("answer to a member over {:?}", version.version),
            seen.app,
        );
        sinks.add(
            format!("wire to a member over {:?}", version.version),
            seen.wire,
        );
    }
    let refused: [(
        &str,
        Option<&Leaf>,
        &'static rustls::SupportedProtocolVersion,
        AlertDescription,
    ); 5] = [
        // TLS 1.3: the client's handshake completes, the alert is the first thing read.
        (
            "no certificate, TLS 1.3",
            None,
            v13,
            AlertDescription::CertificateRequired,
        ),
        // TLS 1.2: the same alert ends the handshake.
        (
            "no certificate, TLS 1.2",
            None,
            v12,
            AlertDescription::CertificateRequired,
        ),
        (
            "a foreign CA's certificate",
            Some(&stranger),
            v13,
            AlertDescription::UnknownCA,
        ),
        (
            "a foreign CA's certificate, TLS 1.2",
            Some(&stranger),
            v12,
            AlertDescription::UnknownCA,
        ),
        (
            "an expired mesh certificate",
            Some(&expired),
            v13,
            AlertDescription::CertificateExpired,
        ),
    ];
    for (what, cert, version, alert) in refused {
        let seen = serve_exchange(serve, serve_client(&pki, cert, version)).await;
        assert_refused(what, &seen, alert);
        sinks.add(format!("what {what} received"), seen.wire);
    }
    // Plain HTTP: at most a TLS alert record, never HTTP.
    let raw = plaintext_exchange(serve).await;
    assert!(
        raw.is_empty() || raw[0] == 0x15,
        "plaintext client got {raw:?}"
    );
    for marker in ABOUT_US {
        assert!(!contains(&raw, marker), "plaintext client got {raw:?}");
    }
    sinks.add("what a plaintext client received", raw);
    scrape(&agent.process, "serving", &mut sinks).await;
    let (stderr, stdout) = agent.stop().await;
    assert!(
        contains(&stderr, b"serve: TLS handshake failed"),
        "the refusals are logged (at debug)"
    );
    sinks.add("agent stderr", stderr);
    sinks.add("agent stdout", stdout);
    sinks.assert_no_key(&needles);
}

async fn cli(args: &[OsString]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "trace")
        .env("NODE_NAME", "cli-node")
        .output()
        .await
        .unwrap()
}

fn os(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_owned()).collect()
}

#[tokio::test]
async fn check_and_probe_never_print_the_key() {
    let pki = Pki::new();
    let keys = Keys::new(&pki);
    let needles = keys.needles();
    let peers = Peers::start(&pki).await;
    let mut id = IdentityFiles::new(&pki, &keys, "cli-identity");
    let config = pki.path("cli.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nsource = \"{SOURCE}\"\ntimeout = \"2s\"\n{}{}",
            id.toml(),
            target_toml(HEALTHY, peers.healthy.addr(), SERVER_ID)
        ),
    )
    .unwrap();
    let adhoc = |addr: SocketAddr, id: &IdentityFiles| {
        os(&[
            &"probe",
            &addr.to_string(),
            &"--cert",
            &id.cert,
            &"--key",
            &id.key.link,
            &"--ca",
            &id.ca,
            &"--spiffe-id",
            &SERVER_ID,
            &"--http-path",
            &"/healthz",
        ])
    };
    let mut sinks = Sinks::default();
    let mut record = |what: String, o: &Output| {
        assert!(!contains(&o.stderr, b"panicked"), "{what}: {o:?}");
        sinks.add(format!("{what}: stdout"), o.stdout.clone());
        sinks.add(format!("{what}: stderr"), o.stderr.clone());
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    for state in bad_keys(&keys, pki.dir.path()) {
        id.key.set(&state.content);
        let name = state.name;
        let o = cli(&os(&[&"check", &"--config", &config])).await;
        let text = record(format!("check, key.pem is {name}"), &o);
        assert_eq!(o.status.code(), Some(2), "check, {name}: {text}");
        assert!(text.contains(state.expect), "check, {name}: {text}");
        let o = cli(&os(&[&"probe", &"--config", &config, &"--output", &"json"])).await;
        let text = record(format!("probe --config, key.pem is {name}"), &o);
        assert_eq!(o.status.code(), Some(1), "probe, {name}: {text}");
        assert!(
            text.contains("identity_unavailable"),
            "probe, {name}: {text}"
        );
        assert!(text.contains(state.expect), "probe, {name}: {text}");
        let o = cli(&adhoc(peers.healthy.addr(), &id)).await;
        let text = record(format!("probe ADDRESS --key, key.pem is {name}"), &o);
        assert_eq!(o.status.code(), Some(1), "probe ADDRESS, {name}: {text}");
        assert!(text.contains(state.expect), "probe ADDRESS, {name}: {text}");
    }
    // The valid key: check passes, probes pass over TLS 1.3 and 1.2, and the peer that
    // refuses our certificate is named as such.
    id.key.set(&good(&keys));
    let o = cli(&os(&[&"check", &"--config", &config])).await;
    let text = record("check, valid key".into(), &o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    for (addr, code, fragment) in [
        (peers.healthy.addr(), 0, "TLS 1.3"),
        (peers.tls12.addr(), 0, "TLS 1.2"),
        (peers.refuses_us.addr(), 1, "client_cert_rejected"),
    ] {
        let mut args = adhoc(addr, &id);
        args.extend(os(&[&"--output", &"json"]));
        let o = cli(&args).await;
        let text = record(format!("probe {addr}, valid key"), &o);
        assert_eq!(o.status.code(), Some(code), "{text}");
        assert!(text.contains(fragment), "{text}");
        assert!(text.contains("TRACE"), "trace logs: {text}");
    }
    sinks.assert_no_key(&needles);
}
