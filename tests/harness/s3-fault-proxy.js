// s3-fault-proxy.js: a loopback HTTP proxy in front of the test's s3rver
// that answers HTTP 500 to every upload of one multipart part number, and
// logs each request line, so a test can see what sluice did after the
// failure (such as aborting the upload). Bodies and headers pass through
// untouched: the signature sluice made for the proxy's address still holds.
//
//   node s3-fault-proxy.js UPSTREAM_PORT PART_NUMBER LOG [PATH_PART]
//
// With PATH_PART, every upload (PutObject or UploadPart) to a key whose
// path contains it fails instead, whatever its part number.
//
// Prints "listening PORT" on stdout once it accepts connections.
'use strict';
const http = require('http');
const fs = require('fs');

const [upstream, failPart, log, failPath] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  fs.appendFileSync(log, `${req.method} ${req.url}\n`);
  const url = new URL(req.url, 'http://127.0.0.1');
  const fails = failPath ? url.pathname.includes(failPath) : url.searchParams.get('partNumber') === failPart;
  if (req.method === 'PUT' && fails) {
    req.resume();
    req.on('end', () => {
      res.writeHead(500, { 'Content-Type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>' +
              '<Message>part failed by the test</Message></Error>');
    });
    return;
  }
  const up = http.request({ host: '127.0.0.1', port: upstream, method: req.method, path: req.url,
                            headers: req.headers }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  up.on('error', () => { res.writeHead(502); res.end(); });
  req.pipe(up);
});
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
