//! Input the command never reads: the client keeps sending stdin after `head -n 1` exited, as
//! `criusctl exec -i … head -n 1` does. The server must still deliver the status and close
//! cleanly (FIN, not RST): a socket closed with unread bytes in its receive buffer makes Linux
//! send RST and throw away what was not sent yet, and the client sees ECONNRESET instead of the
//! exit code.

use super::*;

/// Stdin the client sends: more than the socket buffers hold, so some of it is still unread
/// when the server is done.
const LATE_INPUT: usize = 4 << 20;
const CHUNK: usize = 16 << 10;
const ROUNDS: usize = 10;

#[tokio::test]
async fn websocket_status_survives_stdin_nobody_reads() {
    let (s, _) = server().await;
    for round in 0..ROUNDS {
        let url = s
            .exec(exec_req(&["head", "-n", "1"], true, false))
            .expect("url")
            .url;
        let (ws, _) = ws_connect(&url, "v5.channel.k8s.io").await;
        let (mut sink, mut stream) = ws.split();
        sink.send(bin(0, b"from-stdin\n")).await.expect("send");
        // Keep typing while the command exits and after: a pipe does not know `head` is gone.
        let typist = tokio::spawn(async move {
            for _ in 0..LATE_INPUT / CHUNK {
                if sink.send(bin(0, &[b'x'; CHUNK])).await.is_err() {
                    return;
                }
            }
            let _ = sink.send(bin(255, &[0])).await;
        });
        let (mut out, mut st, mut closed) = (Vec::new(), Vec::new(), false);
        while let Some(m) = stream.next().await {
            match m.unwrap_or_else(|e| panic!("round {round}: read failed: {e}")) {
                Message::Binary(b) => match b.split_first() {
                    Some((1, body)) => out.extend_from_slice(body),
                    Some((3, body)) => st.extend_from_slice(body),
                    _ => {}
                },
                Message::Close(_) => closed = true,
                _ => {}
            }
        }
        typist.abort();
        assert!(closed, "round {round}: no close frame");
        assert_eq!(out, b"from-stdin\n", "round {round}");
        assert_eq!(status(&st)["status"], "Success", "round {round}");
    }
}

#[tokio::test]
async fn spdy_status_survives_stdin_nobody_reads() {
    let (s, _) = server().await;
    for round in 0..ROUNDS {
        let url = s
            .exec(exec_req(&["head", "-n", "1"], true, false))
            .expect("url")
            .url;
        let (line, sess) = spdy_connect(&url, "v4.channel.k8s.io").await;
        let sess = sess.unwrap_or_else(|| panic!("{line}"));
        let mut error = sess.open(hdr("error")).await.expect("open");
        let stdin = sess.open(hdr("stdin")).await.expect("open");
        let mut stdout = sess.open(hdr("stdout")).await.expect("open");
        let mut stderr = sess.open(hdr("stderr")).await.expect("open");
        let w = stdin.writer();
        w.write(b"from-stdin\n").await.expect("write");
        let typist = tokio::spawn(async move {
            let _ = w.write(&vec![b'x'; LATE_INPUT]).await;
            let _ = w.close().await;
        });
        let (out, _, st) = tokio::join!(
            read_all(&mut stdout),
            read_all(&mut stderr),
            read_all(&mut error)
        );
        assert_eq!(out, b"from-stdin\n", "round {round}");
        assert_eq!(status(&st)["status"], "Success", "round {round}");
        typist.abort();
    }
}
