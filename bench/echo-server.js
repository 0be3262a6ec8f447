// The baseline for the server bench: a minimal newline-delimited JSON-RPC
// echo server (parse each line, answer with its params). What any Unix-socket
// JSON service costs before it does any work.
'use strict';
const fs = require('node:fs');
const net = require('node:net');

const socketPath = process.argv[2];
try {
  fs.unlinkSync(socketPath);
} catch {
  // not there
}
net
  .createServer((socket) => {
    let buf = '';
    socket.on('data', (chunk) => {
      buf += chunk;
      let nl;
      let out = '';
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const req = JSON.parse(line);
        out += JSON.stringify({ jsonrpc: '2.0', id: req.id, result: req.params }) + '\n';
      }
      if (out) socket.write(out);
    });
    socket.on('error', () => {});
  })
  .listen(socketPath, () => process.stdout.write('ready\n'));
