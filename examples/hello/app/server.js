// The "hello" example app: a tiny HTTP server with no dependencies.
// It listens on $PORT (set by Bakery to the slot's port), answers / with a
// greeting and its version, and /healthz with 200 once it is ready.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const { greet } = require('./lib');

const port = Number(process.env.PORT || 3000);
let version = 'dev';
try {
  version = fs.readFileSync(path.join(__dirname, 'VERSION'), 'utf8').trim();
} catch (e) {
  // not built: run from a checkout
}

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(greet(process.env.GREETING, version) + '\n');
});

server.keepAliveTimeout = 1000;
server.listen(port, '127.0.0.1', () => {
  console.log(`hello ${version} listening on 127.0.0.1:${port}`);
});

// Finish in-flight requests on SIGTERM (systemd stop), then exit.
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 5000).unref();
});
