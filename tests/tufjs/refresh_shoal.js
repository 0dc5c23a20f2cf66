// refresh_shoal.js — tuf-js's Updater (a reference TUF client) against a
// repository made by `shoal release`: serves DIR/metadata and DIR/targets
// (never DIR itself, which holds the keys) over HTTP on 127.0.0.1 with an
// ephemeral port, refreshes a client whose state persists in CLIENT (so a
// later run follows root rotations), downloads targets and compares their
// bytes with the expected files.
//
// Usage: node refresh_shoal.js --repo DIR --client CLIENT [--root ROOT.json]
//            [--target NAME=EXPECTED_FILE]... [--expect-fail] [--root-version N]
//   --root           the trusted root to start from (when CLIENT is new)
//   --expect-fail    the refresh or a download must fail (under-signed
//                    release); the named targets must then not be written
//   --root-version   the client must trust this root version afterwards
// Prints one line; exit 0 when the outcome is the expected one, 1 otherwise.
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Updater } = require('tuf-js');

function args(argv) {
  const o = { targets: [], expectFail: false };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--repo') o.repo = next();
    else if (a === '--client') o.client = next();
    else if (a === '--root') o.root = next();
    else if (a === '--root-version') o.rootVersion = Number(next());
    else if (a === '--expect-fail') o.expectFail = true;
    else if (a === '--target') {
      const v = next();
      const eq = v.indexOf('=');
      if (eq <= 0) throw new Error(`--target wants NAME=FILE, got ${v}`);
      o.targets.push({ name: v.slice(0, eq), want: v.slice(eq + 1) });
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!o.repo || !o.client) throw new Error('--repo and --client are required');
  return o;
}

// Serves only /metadata/ and /targets/ of the repository, read-only.
function serve(repo) {
  // DIR/metadata is a symlink that publish swaps; it is resolved per
  // request, as any web server does
  const roots = { metadata: path.join(repo, 'metadata'), targets: path.join(repo, 'targets') };
  const server = http.createServer((req, res) => {
    let rel;
    try {
      rel = decodeURIComponent(new URL(req.url, 'http://127.0.0.1').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const m = /^\/(metadata|targets)\/(.+)$/.exec(rel);
    const file = m && path.resolve(roots[m[1]], m[2]);
    if (!m || rel.includes('..') || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

(async () => {
  let o;
  try {
    o = args(process.argv);
  } catch (e) {
    console.error(`refresh_shoal: ${e.message}`);
    process.exit(2);
  }
  const mdDir = path.join(o.client, 'md');
  const tDir = path.join(o.client, 't');
  fs.mkdirSync(mdDir, { recursive: true });
  fs.mkdirSync(tDir, { recursive: true });
  if (!fs.existsSync(path.join(mdDir, 'root.json'))) {
    if (!o.root) {
      console.error('refresh_shoal: a new client needs --root');
      process.exit(2);
    }
    fs.copyFileSync(o.root, path.join(mdDir, 'root.json'));
  }
  const server = await serve(o.repo);
  const base = `http://127.0.0.1:${server.address().port}`;
  const outFile = (name) => path.join(tDir, encodeURIComponent(name));
  for (const t of o.targets) fs.rmSync(outFile(t.name), { force: true });
  let err = null;
  try {
    const updater = new Updater({
      metadataDir: mdDir,
      metadataBaseUrl: `${base}/metadata/`,
      targetDir: tDir,
      targetBaseUrl: `${base}/targets/`,
      config: { fetchRetries: 0, fetchTimeout: 10000 },
    });
    await updater.refresh();
    for (const t of o.targets) {
      const info = await updater.getTargetInfo(t.name);
      if (!info) throw new Error(`target ${t.name} not in the trusted targets metadata`);
      await updater.downloadTarget(info, outFile(t.name));
    }
  } catch (e) {
    err = e;
  }
  server.close();
  const rootVersion = JSON.parse(fs.readFileSync(path.join(mdDir, 'root.json'))).signed.version;
  let bad = null;
  if (o.expectFail) {
    if (!err) bad = 'tuf-js accepted a release it must refuse';
    for (const t of o.targets) if (!bad && fs.existsSync(outFile(t.name))) bad = `${t.name} was written`;
  } else if (err) {
    bad = `tuf-js failed: ${err.constructor.name}: ${err.message}`;
  } else {
    for (const t of o.targets) {
      if (!fs.readFileSync(outFile(t.name)).equals(fs.readFileSync(t.want))) bad = `${t.name}: bytes differ`;
    }
  }
  if (!bad && o.rootVersion && rootVersion !== o.rootVersion) {
    bad = `trusted root version ${rootVersion}, want ${o.rootVersion}`;
  }
  if (bad) {
    console.error(`refresh_shoal: FAIL: ${bad}`);
    process.exit(1);
  }
  console.log(o.expectFail ? `tuf-js refused as expected: ${err.constructor.name}: ${err.message}`
                           : `tuf-js ok: root v${rootVersion}, ${o.targets.length} target(s) verified`);
})().catch((e) => {
  console.error(`refresh_shoal: ${e.stack || e}`);
  process.exit(1);
});
