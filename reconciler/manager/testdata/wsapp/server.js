// A dependency-free test app for the ingress e2e test (ingress_e2e_test.go):
// GET / answers "REV pid", /healthz ok, /sse sends 5 events 400 ms apart,
// POST /upload answers the body's length, /ws is a WebSocket echo that
// answers each text message with "REV:message".
'use strict';
const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const rev = fs.readFileSync(__dirname + '/REV', 'utf8').trim();

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') return res.end('ok\n');
  if (req.url === '/sse') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    let i = 0;
    const tick = () => {
      res.write(`data: ${i} ${Date.now()}\n\n`);
      if (++i === 5) return res.end();
      setTimeout(tick, 400);
    };
    return tick();
  }
  if (req.url === '/upload') {
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => res.end(`${n}\n`));
    return;
  }
  res.end(`${rev} ${process.pid}\n`);
});

server.on('upgrade', (req, sock) => {
  const key = req.headers['sec-websocket-key'];
  if (req.url !== '/ws' || !key) return sock.destroy();
  const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${accept}\r\n\r\n`);
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const op = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      if (len === 127) return sock.destroy();
      const masked = buf[1] & 0x80;
      const need = off + (masked ? 4 : 0) + len;
      if (buf.length < need) return;
      const mask = masked ? buf.subarray(off, off + 4) : null;
      const data = Buffer.from(buf.subarray(need - len, need));
      if (mask) for (let i = 0; i < data.length; i++) data[i] ^= mask[i % 4];
      buf = buf.subarray(need);
      if (op === 8) return sock.end(Buffer.from([0x88, 0]));
      if (op !== 1) continue;
      const out = Buffer.from(`${rev}:${data.toString()}`);
      const head = out.length < 126 ? Buffer.from([0x81, out.length]) : Buffer.from([0x81, 126, out.length >> 8, out.length & 0xff]);
      sock.write(Buffer.concat([head, out]));
    }
  });
  sock.on('error', () => {});
});

process.on('SIGTERM', () => { server.close(); process.exit(0); });
server.listen(process.env.PORT, () => console.log(`wsapp ${rev} listening on ${process.env.PORT}`));
