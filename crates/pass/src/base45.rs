//! Base45 (RFC 9285): the QR code's alphanumeric mode carries 45 symbols, and base45 packs two
//! bytes into three of them, so a pass fills a smaller code than base64 would.

const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Encodes `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(2) * 3);
    let mut push = |v: usize| out.push(char::from(ALPHABET[v % 45]));
    for pair in bytes.chunks(2) {
        match *pair {
            [a, b] => {
                let n = usize::from(a) * 256 + usize::from(b);
                push(n);
                push(n / 45);
                push(n / (45 * 45));
            }
            [a] => {
                let n = usize::from(a);
                push(n);
                push(n / 45);
            }
            _ => {}
        }
    }
    out
}

fn value(c: u8) -> Option<u32> {
    ALPHABET
        .iter()
        .position(|&a| a == c)
        .and_then(|p| u32::try_from(p).ok())
}

/// Decodes `text`; `None` when it holds a character outside the alphabet, a dangling single
/// character, or a group whose value does not fit its bytes.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let raw = text.as_bytes();
    let mut out = Vec::with_capacity(raw.len() / 3 * 2 + 1);
    for group in raw.chunks(3) {
        match *group {
            [c, d, e] => {
                let n = value(c)? + value(d)? * 45 + value(e)? * 45 * 45;
                let n = u16::try_from(n).ok()?;
                out.extend_from_slice(&n.to_be_bytes());
            }
            [c, d] => {
                let n = value(c)? + value(d)? * 45;
                out.push(u8::try_from(n).ok()?);
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_9285_examples() {
        assert_eq!(encode(b"AB"), "BB8");
        assert_eq!(encode(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(encode(b"base-45"), "UJCLQE7W581");
        assert_eq!(decode("QED8WEX0").as_deref(), Some(&b"ietf!"[..]));
        assert_eq!(decode("BB8").as_deref(), Some(&b"AB"[..]));
    }

    #[test]
    fn round_trips_and_refuses_what_rfc_9285_forbids() {
        let bytes: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xff]).collect();
        for n in 0..bytes.len() {
            assert_eq!(decode(&encode(&bytes[..n])).as_deref(), Some(&bytes[..n]));
        }
        // GGW = 65536: one more than two bytes hold; a lone character; a lower-case letter.
        assert_eq!(decode("GGW"), None);
        assert_eq!(decode("BB8A"), None);
        assert_eq!(decode("bb8"), None);
        // Two characters above 255.
        assert_eq!(decode("::"), None);
    }
}
