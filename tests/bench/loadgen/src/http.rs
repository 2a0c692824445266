//! A minimal HTTP/1.1 client connection: one request at a time, its whole response read
//! (content-length, chunked, or until the server closes), kept open when the server allows.
//! The publishers pool these for `POST /api/publish`; the churn mode reads `/metrics` with one.
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One answered request.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The server keeps the connection open: it may carry the next request.
    pub reusable: bool,
}

pub struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(authority: &str) -> io::Result<Conn> {
        let s = TcpStream::connect(authority).await?;
        s.set_nodelay(true)?;
        Ok(Conn { s, buf: Vec::with_capacity(4096) })
    }

    /// Reads more bytes into the buffer; an early end of stream is an error.
    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        match self.s.read(&mut chunk).await? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    /// The next `n` bytes, appended to `out`.
    async fn take(&mut self, n: usize, out: &mut Vec<u8>) -> io::Result<()> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        out.extend(self.buf.drain(..n));
        Ok(())
    }

    /// Sends one request (`req` is the whole request, head and body) and reads its response.
    pub async fn request(&mut self, req: &[u8]) -> io::Result<Response> {
        self.buf.clear();
        self.s.write_all(req).await?;
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let status_line = self.line().await?;
        let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("status"))?;
        let (mut len, mut chunked, mut close) = (None, false, false);
        loop {
            let h = self.line().await?;
            if h.is_empty() {
                break;
            }
            let Some((name, value)) = h.split_once(':') else { continue };
            let value = value.trim().to_ascii_lowercase();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = Some(value.parse::<usize>().map_err(|_| bad("content-length"))?),
                "transfer-encoding" => chunked = value.contains("chunked"),
                "connection" => close = value == "close",
                _ => {}
            }
        }
        let mut body = Vec::new();
        if status == 204 || status == 304 || (100..200).contains(&status) {
        } else if chunked {
            loop {
                let size = self.line().await?;
                let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| bad("chunk size"))?;
                if size == 0 {
                    while !self.line().await?.is_empty() {}
                    break;
                }
                self.take(size, &mut body).await?;
                self.take(2, &mut Vec::new()).await?; // the chunk's CRLF
            }
        } else if let Some(n) = len {
            self.take(n, &mut body).await?;
        } else {
            // No length: the body ends with the connection.
            while self.fill().await.is_ok() {}
            body.append(&mut self.buf);
            close = true;
        }
        Ok(Response { status, body, reusable: !close })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Serves `answers` in order on one connection, each after reading a request's head.
    async fn server(answers: Vec<&'static [u8]>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            let Ok((mut s, _)) = listener.accept().await else { return };
            for answer in answers {
                let (mut seen, mut chunk) = (Vec::new(), [0u8; 1024]);
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&chunk[..n]),
                    }
                }
                if s.write_all(answer).await.is_err() {
                    return;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_each_framing_and_keeps_the_connection_when_allowed() {
        let addr = server(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\nbusy",
        ])
        .await;
        let mut conn = Conn::open(&addr).await.expect("connect");
        let get = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        let r = conn.request(get).await.expect("plain");
        assert_eq!((r.status, r.body.as_slice(), r.reusable), (200, &b"hello"[..], true));
        let r = conn.request(get).await.expect("chunked");
        assert_eq!((r.status, r.body.as_slice(), r.reusable), (200, &b"hello world"[..], true));
        let r = conn.request(get).await.expect("empty");
        assert_eq!((r.status, r.body.len(), r.reusable), (202, 0, true));
        let r = conn.request(get).await.expect("until close");
        assert_eq!((r.status, r.body.as_slice(), r.reusable), (503, &b"busy"[..], false));
    }

    #[tokio::test]
    async fn a_response_cut_short_is_an_error() {
        let addr = server(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhel"]).await;
        let mut conn = Conn::open(&addr).await.expect("connect");
        assert!(conn.request(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.is_err());
    }
}
