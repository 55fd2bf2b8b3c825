//! Bencode output (BEP 3) written straight into a buffer: the tracker's responses are a
//! handful of fixed shapes, so they are written by hand, and the tests check every shape
//! against `bendy` as the reference encoder and decoder.

/// Appends bencoded values to a byte buffer. The caller writes dictionary keys in sorted
/// order, as bencode requires.
pub struct Writer<'a>(pub &'a mut Vec<u8>);

impl Writer<'_> {
    /// A byte string: `<len>:<bytes>`.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(itoa(b.len() as i64).as_bytes());
        self.0.push(b':');
        self.0.extend_from_slice(b);
        self
    }

    /// An integer: `i<n>e`.
    pub fn int(&mut self, n: i64) -> &mut Self {
        self.0.push(b'i');
        self.0.extend_from_slice(itoa(n).as_bytes());
        self.0.push(b'e');
        self
    }

    /// Raw, already bencoded bytes (a constant key, say).
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }

    /// Starts a dictionary.
    pub fn dict(&mut self) -> &mut Self {
        self.0.push(b'd');
        self
    }

    /// Starts a list.
    pub fn list(&mut self) -> &mut Self {
        self.0.push(b'l');
        self
    }

    /// Ends a dictionary or list.
    pub fn end(&mut self) -> &mut Self {
        self.0.push(b'e');
        self
    }
}

fn itoa(n: i64) -> String {
    n.to_string()
}

/// A complete failure response (BEP 3): `d14:failure reason<len>:<reason>e`.
pub fn failure(reason: &str, out: &mut Vec<u8>) {
    Writer(out)
        .dict()
        .raw(b"14:failure reason")
        .bytes(reason.as_bytes())
        .end();
}
