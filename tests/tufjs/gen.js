// gen.js — builds the TUF repositories shoal's client is tested against,
// with tuf-js's @tufjs/models (metadata classes and canonical JSON) and
// node:crypto keys (ed25519, ecdsa-sha2-nistp256, rsassa-pss-sha256).
//
// Usage: node gen.js OUTDIR
//
// Each scenario is OUTDIR/NAME/ with
//   root.json       the trusted root the client is initialised with
//   sN/metadata/    what the repository (or a mirror) serves in state N
//   sN/targets/
//   want/ENC        expected content of a downloaded target (ENC = name with
//                   bytes outside [A-Za-z0-9._~-] percent-encoded)
//   steps           one line per client run, in order, on one metadata dir:
//                   STATE TIME COMMAND EXPECT [TARGET...]
//                   EXPECT is OK or the shoal error name (EBADSIG, EREPLAY,
//                   EEXPIRED, ETOOBIG, EBADMAC, ENOTFOUND, EPROTO)
// Attack scenarios change the JSON after tuf-js builds it (tuf-js itself
// refuses to build, e.g., a role listing one keyid twice) and re-sign.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { canonicalize } = require('@tufjs/canonical-json');
const M = require('@tufjs/models');
const { DelegatedRole, Role } = require('@tufjs/models/dist/role');
const { Delegations } = require('@tufjs/models/dist/delegations');

const OUT = process.argv[2];
if (!OUT) {
  console.error('usage: node gen.js OUTDIR');
  process.exit(2);
}
const T_NOW = '2027-01-01T00:00:00Z';     // the fixed update start time in steps
const T_LATER = '2031-06-01T00:00:00Z';   // after EXP_SOON
const EXP_FAR = '2100-01-01T00:00:00Z';
const EXP_SOON = '2030-01-01T00:00:00Z';

// ---- keys ----
function makeKey(type, opts = {}) {
  let pair, keytype, scheme, pub, sign;
  if (type === 'ed25519') {
    pair = crypto.generateKeyPairSync('ed25519');
    const der = pair.publicKey.export({ format: 'der', type: 'spki' });
    keytype = scheme = 'ed25519';
    pub = opts.pem ? pair.publicKey.export({ format: 'pem', type: 'spki' })
                   : der.subarray(der.length - 32).toString('hex');
    sign = (data) => crypto.sign(null, data, pair.privateKey);
  } else if (type === 'ecdsa') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    keytype = 'ecdsa';
    scheme = 'ecdsa-sha2-nistp256';
    // PEM as securesystemslib writes it, or the raw point in hex (tuf-js reads both)
    pub = opts.hex ? pair.publicKey.export({ format: 'jwk' }) && ecPointHex(pair.publicKey)
                   : pair.publicKey.export({ format: 'pem', type: 'spki' });
    sign = (data) => crypto.sign('sha256', data, pair.privateKey); // DER, as tuf-js verifies
  } else if (type === 'rsa') {
    pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    keytype = 'rsa';
    scheme = 'rsassa-pss-sha256';
    pub = pair.publicKey.export({ format: 'pem', type: 'spki' });
    // securesystemslib signs with salt = digest length; node's default is the
    // maximum salt. Both must verify.
    const saltLength = opts.maxSalt ? crypto.constants.RSA_PSS_SALTLEN_MAX_SIGN : 32;
    sign = (data) => crypto.sign('sha256', data, {
      key: pair.privateKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength,
    });
  } else {
    throw new Error('key type ' + type);
  }
  const keyJSON = { keytype, scheme, keyval: { public: pub } };
  const keyid = crypto.createHash('sha256').update(canonicalize(keyJSON)).digest('hex');
  const model = new M.Key({ keyID: keyid, keyType: keytype, scheme, keyVal: { public: pub } });
  return { keyid, model, sign, json: keyJSON };
}

function ecPointHex(pub) {
  const der = pub.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 65).toString('hex'); // 04 || X || Y
}

function signer(key, claimedId) {
  return (bytes) => new M.Signature({ keyID: claimedId || key.keyid, sig: key.sign(bytes).toString('hex') });
}

// Signs a plain JSON document's "signed" with keys (appending).
function signJSON(doc, keys) {
  const bytes = Buffer.from(canonicalize(doc.signed));
  for (const k of keys) doc.signatures.push({ keyid: k.keyid, sig: k.sign(bytes).toString('hex') });
  return doc;
}

const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
const sha512 = (b) => crypto.createHash('sha512').update(b).digest('hex');
const enc = (s) => s.replace(/[^A-Za-z0-9._~-]/g, (c) =>
  Array.from(Buffer.from(c)).map((b) => '%' + b.toString(16).toUpperCase().padStart(2, '0')).join(''));
const write = (p, data) => { fs.mkdirSync(path.dirname(p), { recursive: true }); fs.writeFileSync(p, data); };
const dump = (obj) => JSON.stringify(obj, null, 1); // not canonical on disk, on purpose

// ---- a repository ----
// Holds keys and the JSON of every role; publish() writes one state.
class Repo {
  constructor(o = {}) {
    this.consistent = o.consistent !== false;
    const kt = o.keyTypes || {};
    this.keys = {};
    this.thresholds = { root: 1, timestamp: 1, snapshot: 1, targets: 1, ...(o.thresholds || {}) };
    for (const role of ['root', 'timestamp', 'snapshot', 'targets']) {
      const types = kt[role] || ['ed25519'];
      this.keys[role] = types.map((t) => makeKey(t, { maxSalt: role === 'targets' }));
    }
    this.expires = { root: EXP_FAR, timestamp: EXP_FAR, snapshot: EXP_FAR, targets: EXP_FAR };
    this.versions = { root: 1, timestamp: 1, snapshot: 1, targets: 1 };
    this.targetFiles = {};      // path -> Buffer
    this.delegated = {};        // name -> { keys, version, expires, targets, delegations }
    this.delegations = null;    // top-level targets' delegations: [{name, keys, threshold, terminating, paths|pathHashPrefixes}]
    this.roots = [];            // published root JSON docs, index = version - 1
    this.snapshotHashes = o.snapshotHashes || false; // list hashes of targets metadata in snapshot
    this.signRoot();
  }

  rootSigned() {
    const keys = {};
    const roles = {};
    for (const role of ['root', 'timestamp', 'snapshot', 'targets']) {
      for (const k of this.keys[role]) keys[k.keyid] = k.model;
      roles[role] = new Role({ keyIDs: this.keys[role].map((k) => k.keyid), threshold: this.thresholds[role] });
    }
    return new M.Root({ version: this.versions.root, expires: this.expires.root, keys, roles,
                        consistentSnapshot: this.consistent });
  }

  // Signs the current root with its own keys plus extra (old) keys.
  signRoot(extraSigners = [], only = null) {
    const md = new M.Metadata(this.rootSigned());
    const signers = only || [...this.keys.root, ...extraSigners];
    for (const k of signers) md.sign(signer(k));
    this.roots[this.versions.root - 1] = md.toJSON();
  }

  rotateRoot(newTypes, o = {}) {
    const old = this.keys.root;
    this.keys.root = newTypes.map((t) => makeKey(t));
    if (o.rotateTimestamp) this.keys.timestamp = [makeKey('ed25519')];
    if (o.rotateSnapshot) this.keys.snapshot = [makeKey('ed25519')];
    this.versions.root += 1;
    this.signRoot(o.withoutOld ? [] : old, o.onlyOld ? old : null);
  }

  buildTargets(name, spec) {
    const targets = {};
    for (const [p, content] of Object.entries(spec.targets)) {
      targets[p] = new M.TargetFile({ path: p, length: content.length,
        hashes: { sha256: sha256(content), ...(spec.sha512 ? { sha512: sha512(content) } : {}) },
        unrecognizedFields: spec.custom ? { custom: spec.custom } : {} });
    }
    let delegations;
    if (spec.delegations) {
      const keys = {};
      const roles = {};
      for (const d of spec.delegations) {
        for (const k of d.keys) keys[k.keyid] = k.model;
        roles[d.name] = new DelegatedRole({ name: d.name, keyIDs: d.keys.map((k) => k.keyid),
          threshold: d.threshold || 1, terminating: !!d.terminating, paths: d.paths,
          pathHashPrefixes: d.pathHashPrefixes });
      }
      delegations = new Delegations({ keys, roles });
    }
    return new M.Targets({ version: spec.version, expires: spec.expires, targets, delegations,
                           unrecognizedFields: spec.unknown || {} });
  }

  // Writes one state into dir: metadata/ and targets/.
  publish(dir, hooks = {}) {
    const meta = path.join(dir, 'metadata');
    const tdir = path.join(dir, 'targets');
    fs.mkdirSync(meta, { recursive: true });
    fs.mkdirSync(tdir, { recursive: true });
    this.roots.forEach((r, i) => { if (r) write(path.join(meta, `${i + 1}.root.json`), dump(r)); });
    write(path.join(meta, 'root.json'), dump(this.roots[this.roots.length - 1]));

    const files = {}; // metadata file name -> bytes
    const snapMeta = {};
    const roleFile = (name, version, json) => {
      const bytes = Buffer.from(hooks[name] ? hooks[name](json) : dump(json));
      files[name] = { bytes, version };
      const info = { version };
      if (this.snapshotHashes) { info.length = bytes.length; info.hashes = { sha256: sha256(bytes) }; }
      snapMeta[`${name}.json`] = new M.MetaFile(info);
    };
    // delegated roles
    for (const [name, d] of Object.entries(this.delegated)) {
      const md = new M.Metadata(this.buildTargets(name, d));
      for (const k of (d.signWith || d.keys)) md.sign(signer(k));
      roleFile(name, d.version, md.toJSON());
    }
    const tmd = new M.Metadata(this.buildTargets('targets', {
      version: this.versions.targets, expires: this.expires.targets, targets: this.targetFiles,
      delegations: this.delegations, custom: this.custom, unknown: this.unknownTargets, sha512: true }));
    for (const k of (this.signWith?.targets || this.keys.targets)) tmd.sign(signer(k));
    roleFile('targets', this.versions.targets, tmd.toJSON());
    if (this.snapMetaHook) this.snapMetaHook(snapMeta);

    const smd = new M.Metadata(new M.Snapshot({ version: this.versions.snapshot,
      expires: this.expires.snapshot, meta: snapMeta }));
    for (const k of (this.signWith?.snapshot || this.keys.snapshot)) smd.sign(signer(k));
    const sbytes = Buffer.from(hooks.snapshot ? hooks.snapshot(smd.toJSON()) : dump(smd.toJSON()));
    const tsmd = new M.Metadata(new M.Timestamp({ version: this.versions.timestamp,
      expires: this.expires.timestamp,
      snapshotMeta: new M.MetaFile({ version: this.versions.snapshot, length: sbytes.length,
                                     hashes: { sha256: sha256(sbytes) } }) }));
    for (const k of (this.signWith?.timestamp || this.keys.timestamp)) tsmd.sign(signer(k));
    const tsbytes = Buffer.from(hooks.timestamp ? hooks.timestamp(tsmd.toJSON()) : dump(tsmd.toJSON()));

    write(path.join(meta, 'timestamp.json'), tsbytes);
    const put = (name, version, bytes) => {
      // the server's file name is the role name itself; clients percent-encode it in URLs
      write(path.join(meta, this.consistent ? `${version}.${name}.json` : `${name}.json`), bytes);
    };
    put('snapshot', this.versions.snapshot, hooks.snapshotServed || sbytes);
    for (const [name, f] of Object.entries(files)) put(name, f.version, (hooks.served && hooks.served[name]) || f.bytes);

    // every role's targets, unmerged: two roles may sign one path differently
    const allTargets = [this.targetFiles, ...Object.values(this.delegated).map((d) => d.targets)]
      .flatMap((t) => Object.entries(t));
    for (const [p, content] of allTargets) {
      const served = (hooks.targetServed && hooks.targetServed[p]) || content;
      if (this.consistent) {
        const slash = p.lastIndexOf('/');
        const dirn = p.slice(0, slash + 1), base = p.slice(slash + 1);
        write(path.join(tdir, `${dirn}${sha256(content)}.${base}`), served);
        write(path.join(tdir, `${dirn}${sha512(content)}.${base}`), served);
      } else {
        write(path.join(tdir, p), served);
      }
    }
    return { tsbytes, sbytes, files };
  }
}

// Each scenario: a name, a build function writing states, steps.
const scenarios = {};
function scenario(name, fn) { scenarios[name] = fn; }

function begin(name, repo) {
  const dir = path.join(OUT, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  write(path.join(dir, 'root.json'), dump(repo.roots[0]));
  const steps = [];
  return {
    dir,
    state: (s, hooks) => repo.publish(path.join(dir, s), hooks),
    step: (...a) => steps.push(a.join(' ')),
    want: (name_, content) => write(path.join(dir, 'want', enc(name_)), content),
    end: () => write(path.join(dir, 'steps'), steps.join('\n') + '\n'),
  };
}

const F1 = Buffer.from('first target\n');
const F2 = Buffer.from('second target, in a directory\n');

// --- interop and key types ---
for (const [name, types, consistent] of [
  ['basic_ed25519', ['ed25519'], true],
  ['basic_ecdsa', ['ecdsa'], false],
  ['basic_rsa', ['rsa'], true],
]) {
  scenario(name, () => {
    const r = new Repo({ consistent, keyTypes: { root: types, timestamp: types, snapshot: types, targets: types } });
    r.targetFiles = { 'file1.txt': F1, 'dir/file 2.txt': F2 };
    const s = begin(name, r);
    s.state('s1');
    s.want('file1.txt', F1);
    s.want('dir/file 2.txt', F2);
    s.step('s1', T_NOW, 'refresh', 'OK');
    s.step('s1', T_NOW, 'download', 'OK', 'file1.txt', 'dir/file%202.txt');
    s.end();
  });
}

scenario('key_encodings', () => {
  // ed25519 as PEM, ecdsa as a hex point: both forms tuf-js accepts
  const r = new Repo();
  r.keys.timestamp = [makeKey('ed25519', { pem: true })];
  r.keys.snapshot = [makeKey('ecdsa', { hex: true })];
  r.signRoot();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('key_encodings', r);
  s.state('s1');
  s.want('file1.txt', F1);
  s.step('s1', T_NOW, 'download', 'OK', 'file1.txt');
  s.end();
});

scenario('fast_forward_added_key', () => {
  // root 2 adds a timestamp key and keeps the old one: the keys changed, so
  // the fast-forwarded timestamp (v1000) must be forgotten (spec 5.3.11)
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('fast_forward_added_key', r);
  r.versions.timestamp = 1000;
  s.state('s1');
  const oldTs = r.keys.timestamp[0];
  r.keys.timestamp = [makeKey('ed25519'), oldTs];
  r.versions.root = 2;
  r.signRoot();
  r.versions.timestamp = 1;
  r.signWith = { timestamp: [r.keys.timestamp[0]] };
  s.state('s2');
  s.step('s1', T_NOW, 'refresh', 'OK');
  s.step('s2', T_NOW, 'refresh', 'OK');
  s.end();
});

scenario('mixed_keys', () => {
  // root 2-of-3 over three key types; targets RSA with node's maximum salt
  const r = new Repo({ keyTypes: { root: ['ed25519', 'ecdsa', 'rsa'], timestamp: ['ecdsa'],
                                   snapshot: ['rsa'], targets: ['rsa'] }, thresholds: { root: 2 } });
  r.targetFiles = { 'file1.txt': F1 };
  r.custom = { rollout: { waves_bp: [100, 1000, 5000, 10000], note: 'quote " and \\ and é and \u0001' } };
  r.unknownTargets = { 'x-unknown-field': { nested: [1, 2, { z: null, a: true }] } };
  const s = begin('mixed_keys', r);
  s.state('s1');
  s.want('file1.txt', F1);
  s.step('s1', T_NOW, 'download', 'OK', 'file1.txt');
  s.end();
});

// --- arbitrary installation: bad signatures ---
scenario('bad_signature', () => {
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('bad_signature', r);
  s.state('s1', { timestamp: (j) => { const x = j.signatures[0].sig; j.signatures[0].sig = (x[0] === '0' ? '1' : '0') + x.slice(1); return dump(j); } });
  s.step('s1', T_NOW, 'refresh', 'EBADSIG');
  s.end();
});

scenario('wrong_key_targets', () => {
  // targets signed by an attacker key that claims the real keyid
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const evil = makeKey('ed25519');
  r.signWith = { targets: [{ ...evil, keyid: r.keys.targets[0].keyid }] };
  const s = begin('wrong_key_targets', r);
  s.state('s1');
  s.step('s1', T_NOW, 'refresh', 'EBADSIG');
  s.end();
});

scenario('below_threshold', () => {
  const r = new Repo({ keyTypes: { targets: ['ed25519', 'ecdsa'] }, thresholds: { targets: 2 } });
  r.targetFiles = { 'file1.txt': F1 };
  r.signWith = { targets: [r.keys.targets[0]] };
  const s = begin('below_threshold', r);
  s.state('s1');
  s.step('s1', T_NOW, 'refresh', 'EBADSIG');
  r.signWith = null;
  r.versions.targets++; r.versions.snapshot++; r.versions.timestamp++;
  s.state('s2');
  s.step('s2', T_NOW, 'refresh', 'OK');
  s.end();
});

// --- duplicate keys counted once ---
scenario('dup_signature', () => {
  // threshold 2; one key's signature appears twice
  const r = new Repo({ keyTypes: { timestamp: ['ed25519', 'ed25519'] }, thresholds: { timestamp: 2 } });
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('dup_signature', r);
  s.state('s1', { timestamp: (j) => { j.signatures = [j.signatures[0], { ...j.signatures[0] }]; return dump(j); } });
  s.step('s1', T_NOW, 'refresh', 'EBADSIG');
  s.end();
});

scenario('dup_keyid_in_role', () => {
  // the root lists one timestamp keyid twice with threshold 2 (tuf-js would
  // refuse to build this, so the root JSON is edited and re-signed)
  const r = new Repo({ thresholds: { timestamp: 2 } });
  const doc = r.roots[0];
  const id = doc.signed.roles.timestamp.keyids[0];
  doc.signed.roles.timestamp.keyids = [id, id];
  doc.signatures = [];
  signJSON(doc, r.keys.root);
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('dup_keyid_in_role', r);
  s.state('s1', { timestamp: (j) => { j.signatures = [j.signatures[0], { ...j.signatures[0] }]; return dump(j); } });
  s.step('s1', T_NOW, 'refresh', 'EBADSIG');
  s.end();
});

scenario('dup_key_material', () => {
  // two keyids for one public key, threshold 2, a signature under each id
  const r = new Repo({ thresholds: { timestamp: 2 } });
  const doc = r.roots[0];
  const k = r.keys.timestamp[0];
  const alias = 'a'.repeat(64);
  doc.signed.keys[alias] = k.json;
  doc.signed.roles.timestamp.keyids = [k.keyid, alias];
  doc.signatures = [];
  signJSON(doc, r.keys.root);
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('dup_key_material', r);
  s.state('s1', { timestamp: (j) => { j.signatures.push({ keyid: alias, sig: j.signatures[0].sig }); return dump(j); } });
  s.step('s1', T_NOW, 'refresh', 'EBADSIG');
  s.end();
});

// --- rollback, one per role ---
scenario('rollback_timestamp', () => {
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('rollback_timestamp', r);
  r.versions.timestamp = 2;
  s.state('s1');
  r.versions.timestamp = 1;
  s.state('s2');
  s.step('s1', T_NOW, 'refresh', 'OK');
  s.step('s2', T_NOW, 'refresh', 'EREPLAY');
  s.step('s1', T_NOW, 'refresh', 'OK');
  s.end();
});

scenario('rollback_snapshot', () => {
  // a newer timestamp that points at an older snapshot
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('rollback_snapshot', r);
  r.versions.snapshot = 3;
  s.state('s1');
  r.versions.timestamp = 2; r.versions.snapshot = 2;
  s.state('s2');
  s.step('s1', T_NOW, 'refresh', 'OK');
  s.step('s2', T_NOW, 'refresh', 'EREPLAY');
  s.end();
});

scenario('rollback_targets', () => {
  // newer timestamp and snapshot, but snapshot lists an older targets
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('rollback_targets', r);
  r.versions.targets = 3;
  s.state('s1');
  r.versions.timestamp = 2; r.versions.snapshot = 2; r.versions.targets = 2;
  s.state('s2');
  s.step('s1', T_NOW, 'refresh', 'OK');
  s.step('s2', T_NOW, 'refresh', 'EREPLAY');
  s.end();
});

scenario('rollback_delegated', () => {
  // the snapshot rolls a delegated role back, then drops it
  const r = new Repo();
  const kA = makeKey('ed25519');
  r.delegations = [{ name: 'A', keys: [kA], paths: ['a/*'] }];
  r.delegated.A = { version: 2, expires: EXP_FAR, keys: [kA], targets: { 'a/1.txt': F1 } };
  const s = begin('rollback_delegated', r);
  s.state('s1');
  r.versions.timestamp = 2; r.versions.snapshot = 2; r.delegated.A.version = 1;
  s.state('s2');
  r.versions.timestamp = 3; r.versions.snapshot = 3; r.versions.targets = 2;
  r.delegations = null;
  delete r.delegated.A;
  s.state('s3');
  s.want('a/1.txt', F1);
  s.step('s1', T_NOW, 'download', 'OK', 'a/1.txt');
  s.step('s2', T_NOW, 'refresh', 'EREPLAY');
  s.step('s3', T_NOW, 'refresh', 'EREPLAY');
  s.end();
});

scenario('rollback_root', () => {
  // 2.root.json holds a root that says version 1 (validly signed)
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('rollback_root', r);
  s.state('s1');
  write(path.join(s.dir, 's1', 'metadata', '2.root.json'), dump(r.roots[0]));
  s.step('s1', T_NOW, 'refresh', 'EREPLAY');
  s.end();
});

// --- root rotation ---
scenario('root_rotation', () => {
  const r = new Repo({ keyTypes: { root: ['ed25519'] } });
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('root_rotation', r);
  r.rotateRoot(['ecdsa', 'ed25519']);
  r.thresholds.root = 2;
  r.rotateRoot(['rsa', 'ed25519']);
  s.state('s1');
  s.want('file1.txt', F1);
  s.step('s1', T_NOW, 'download', 'OK', 'file1.txt');
  s.end();
});

scenario('root_rotation_unsigned_by_old', () => {
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('root_rotation_unsigned_by_old', r);
  r.rotateRoot(['ed25519'], { withoutOld: true });
  s.state('s1');
  s.step('s1', T_NOW, 'refresh', 'EBADSIG');
  s.end();
});

scenario('root_rotation_unsigned_by_new', () => {
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('root_rotation_unsigned_by_new', r);
  r.rotateRoot(['ed25519'], { onlyOld: true });
  s.state('s1');
  s.step('s1', T_NOW, 'refresh', 'EBADSIG');
  s.end();
});

// --- fast-forward recovery ---
scenario('fast_forward_recovery', () => {
  // an attacker with the timestamp and snapshot keys pushed versions to
  // 1000; the repository rotates those keys in root 2 and restarts at 1
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('fast_forward_recovery', r);
  r.versions.timestamp = 1000; r.versions.snapshot = 1000;
  s.state('s1');
  r.versions.timestamp = 1; r.versions.snapshot = 1;
  s.state('s2'); // same keys, low versions: a rollback
  r.rotateRoot(['ed25519'], { rotateTimestamp: true, rotateSnapshot: true });
  s.state('s3');
  s.step('s1', T_NOW, 'refresh', 'OK');
  s.step('s2', T_NOW, 'refresh', 'EREPLAY');
  s.step('s3', T_NOW, 'refresh', 'OK');
  s.end();
});

// --- indefinite freeze: each role expired ---
for (const role of ['root', 'timestamp', 'snapshot', 'targets']) {
  scenario(`expired_${role}`, () => {
    const r = new Repo();
    r.expires[role] = EXP_SOON;
    if (role === 'root') r.signRoot();
    r.targetFiles = { 'file1.txt': F1 };
    const s = begin(`expired_${role}`, r);
    if (role === 'root') write(path.join(s.dir, 'root.json'), dump(r.roots[0]));
    s.state('s1');
    s.step('s1', T_NOW, 'refresh', 'OK');
    s.step('s1', T_LATER, 'refresh', 'EEXPIRED');
    s.end();
  });
}

// --- mix and match ---
scenario('mix_and_match', () => {
  // s2 serves the new timestamp and snapshot with the old targets under
  // the new name: the snapshot's hashes catch it (s3: without hashes, the
  // version check does)
  const r = new Repo({ snapshotHashes: true });
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('mix_and_match', r);
  const old = r.publish(path.join(s.dir, 's1'));
  r.versions.timestamp = 2; r.versions.snapshot = 2; r.versions.targets = 2;
  r.targetFiles = { 'file1.txt': F1, 'file2.txt': F2 };
  r.publish(path.join(s.dir, 's2'), { served: { targets: old.files.targets.bytes } });
  // s2's 2.targets.json is the old one; make s3 without snapshot hashes
  r.snapshotHashes = false;
  r.versions.timestamp = 3; r.versions.snapshot = 3;
  r.publish(path.join(s.dir, 's3'), { served: { targets: old.files.targets.bytes } });
  s.step('s1', T_NOW, 'refresh', 'OK');
  s.step('s2', T_NOW, 'refresh', 'EBADMAC');
  s.step('s3', T_NOW, 'refresh', 'EREPLAY');
  s.end();
});

scenario('mix_snapshot', () => {
  // a snapshot that differs from the one the timestamp lists
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('mix_snapshot', r);
  const a = r.publish(path.join(s.dir, 'tmp'));
  r.versions.targets = 2;
  r.publish(path.join(s.dir, 's1'), { snapshotServed: undefined });
  // serve the first build's snapshot (same version, other content) at s1
  write(path.join(s.dir, 's1', 'metadata', '1.snapshot.json'), a.sbytes);
  fs.rmSync(path.join(s.dir, 'tmp'), { recursive: true });
  s.step('s1', T_NOW, 'refresh', 'EBADMAC');
  s.end();
});

// --- endless data ---
scenario('endless_metadata', () => {
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('endless_metadata', r);
  // s1: a validly signed timestamp over 16 KiB; s2: a snapshot longer than
  // the timestamp's length (the fetch stops at the length)
  r.unknownTimestampPad = true;
  s.state('s1', { timestamp: (j) => dump(j) + ' '.repeat(20000) });
  r.versions.timestamp = 2;
  const p = r.publish(path.join(s.dir, 's2'));
  write(path.join(s.dir, 's2', 'metadata', '1.snapshot.json'), Buffer.concat([p.sbytes, Buffer.alloc(5000, 0x20)]));
  s.step('s1', T_NOW, 'refresh', 'ETOOBIG');
  s.step('s2', T_NOW, 'refresh', 'ETOOBIG');
  s.end();
});

scenario('endless_target', () => {
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('endless_target', r);
  s.state('s1', { targetServed: { 'file1.txt': Buffer.concat([F1, Buffer.alloc(100000, 0x41)]) } });
  s.step('s1', T_NOW, 'download', 'ETOOBIG', 'file1.txt');
  s.end();
});

scenario('wrong_target_hash', () => {
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('wrong_target_hash', r);
  const evil = Buffer.from(F1);
  evil[0] ^= 1;
  s.state('s1', { targetServed: { 'file1.txt': evil } });
  s.state('s2');
  s.want('file1.txt', F1);
  s.step('s1', T_NOW, 'download', 'EBADMAC', 'file1.txt');
  s.step('s2', T_NOW, 'download', 'OK', 'file1.txt');
  s.end();
});

// --- malicious mirror: tampered, then stale, then a good mirror ---
scenario('malicious_mirror', () => {
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('malicious_mirror', r);
  const v1 = r.publish(path.join(s.dir, 's1'));
  r.versions.timestamp = 2; r.versions.snapshot = 2; r.versions.targets = 2;
  r.targetFiles = { 'file1.txt': F1, 'file2.txt': F2 };
  // s2: a mirror that rewrote targets.json (adds its own target, keeps the signatures)
  r.publish(path.join(s.dir, 's2'), { targets: (j) => { j.signed.targets['evil.sh'] = { length: 3, hashes: { sha256: sha256('x\n\n') } }; return dump(j); } });
  // s3: a stale mirror serving state 1 after the client saw state 2
  // s4: a good mirror with state 2
  r.publish(path.join(s.dir, 's4'));
  fs.cpSync(path.join(s.dir, 's1'), path.join(s.dir, 's3'), { recursive: true });
  s.want('file2.txt', F2);
  s.step('s1', T_NOW, 'refresh', 'OK');
  s.step('s2', T_NOW, 'refresh', 'EBADSIG');
  s.step('s4', T_NOW, 'download', 'OK', 'file2.txt');
  s.step('s3', T_NOW, 'refresh', 'EREPLAY');
  s.step('s4', T_NOW, 'download', 'OK', 'file2.txt');
  void v1;
  s.end();
});

// --- targets already present are not fetched again ---
scenario('target_cached', () => {
  const r = new Repo();
  r.targetFiles = { 'file1.txt': F1 };
  const s = begin('target_cached', r);
  s.state('s1');
  s.state('s2');
  fs.rmSync(path.join(s.dir, 's2', 'targets'), { recursive: true });
  s.want('file1.txt', F1);
  s.step('s1', T_NOW, 'download', 'OK', 'file1.txt');
  s.step('s2', T_NOW, 'download', 'OK', 'file1.txt');
  s.end();
});

// --- delegations ---
scenario('delegations', () => {
  const r = new Repo();
  const kA = makeKey('ed25519'), kB = makeKey('ecdsa'), kC = makeKey('ed25519');
  const kT = makeKey('ed25519'), kU = makeKey('ed25519'), kH = makeKey('rsa'), kS = makeKey('ed25519');
  const kX = makeKey('ed25519'), kEvil = makeKey('ed25519');
  const X1 = Buffer.from('x from C (first in pre-order)\n');
  const X2 = Buffer.from('x from B (later sibling)\n');
  const Y = Buffer.from('y behind a terminating delegation\n');
  const Z = Buffer.from('z by hash prefix\n');
  const W = Buffer.from('w: *.txt does not cross a slash\n');
  const Q = Buffer.from('q in a role named with a space and a plus\n');
  const hz = sha256('hashed/z.txt');
  const d = (name, keys, paths, extra = {}) => ({ name, keys, paths, ...extra });
  r.delegations = [
    d('A', [kA], ['files/*']),
    d('B', [kB], ['files/*']),
    d('T', [kT], ['term/*'], { terminating: true }),
    d('U', [kU], ['term/*']),
    d('H', [kH], undefined, { pathHashPrefixes: [hz.slice(0, 4)] }),
    d('S', [kS], ['*.txt']),
    d('team a+b', [kX], ['quoted/*']),
    d('chain0', [kX], ['deep/*']),
    d('cyc1', [kX], ['cycle/*']),
    d('evil', [kEvil], ['forged/*']),
  ];
  const D = (version, keys, targets, delegations, extra = {}) => ({ version, expires: EXP_FAR, keys, targets, delegations, ...extra });
  r.delegated.A = D(1, [kA], {}, [d('C', [kC], ['files/*'])]);
  r.delegated.C = D(1, [kC], { 'files/x.txt': X1 });
  r.delegated.B = D(1, [kB], { 'files/x.txt': X2 });
  r.delegated.T = D(1, [kT], {});
  r.delegated.U = D(1, [kU], { 'term/y.txt': Y });
  r.delegated.H = D(1, [kH], { 'hashed/z.txt': Z });
  r.delegated.S = D(1, [kS], { 'sub/w.txt': W });
  r.delegated['team a+b'] = D(1, [kX], { 'quoted/q.txt': Q });
  // a chain of 40 roles: deep/near.txt at depth 5, deep/far.txt at depth 40
  for (let i = 0; i < 40; i++) {
    const t = {};
    if (i === 4) t['deep/near.txt'] = Buffer.from('near\n');
    if (i === 39) t['deep/far.txt'] = Buffer.from('far\n');
    r.delegated[`chain${i}`] = D(1, [kX], t, i < 39 ? [d(`chain${i + 1}`, [kX], ['deep/*'])] : undefined);
  }
  r.delegated.cyc1 = D(1, [kX], {}, [d('cyc2', [kX], ['cycle/*'])]);
  r.delegated.cyc2 = D(1, [kX], {}, [d('cyc1', [kX], ['cycle/*'])]);
  r.delegated.evil = D(1, [kEvil], { 'forged/f.txt': Buffer.from('f\n') }, undefined, { signWith: [kX] });
  const s = begin('delegations', r);
  s.state('s1');
  s.want('files/x.txt', X1);
  s.want('hashed/z.txt', Z);
  s.want('quoted/q.txt', Q);
  s.want('deep/near.txt', Buffer.from('near\n'));
  s.step('s1', T_NOW, 'download', 'OK', 'files/x.txt', 'hashed/z.txt', 'quoted/q.txt', 'deep/near.txt');
  s.step('s1', T_NOW, 'download', 'ENOTFOUND', 'term/y.txt');
  s.step('s1', T_NOW, 'download', 'ENOTFOUND', 'sub/w.txt');
  s.step('s1', T_NOW, 'download', 'ENOTFOUND', 'deep/far.txt');
  s.step('s1', T_NOW, 'download', 'ENOTFOUND', 'cycle/c.txt');
  s.step('s1', T_NOW, 'download', 'EBADSIG', 'forged/f.txt');
  s.step('s1', T_NOW, 'download', 'ENOTFOUND', 'nowhere.txt');
  s.end();
});

// --- canonical JSON vectors: input as written by JSON.stringify, expected
// output from tuf-js's canonicalize ---
scenario('_cjson', () => {
  const dir = path.join(OUT, '_cjson');
  fs.rmSync(dir, { recursive: true, force: true });
  const inputs = [
    { b: 1, a: [true, false, null], c: { z: 'zz', y: -5, x: {} }, '': [] },
    { 'quote"key': 'back\\slash "quoted"', tab: 'a\tb\nc\u0001d', e: 'é ü 日本', big: 9007199254740991, neg: -9007199254740991 },
    { signed: { _type: 'targets', version: 3, targets: { 'a b/c.txt': { length: 0, hashes: {} } } }, signatures: [] },
    [[], {}, [[[0]]], 'x', 0, -0],
    { Z: 1, a: 2, _: 3, '0': 4, 'ab': 5, 'a': 6, 'aa': 7, 'é': 8, 'z': 9 },
  ];
  inputs.forEach((v, i) => {
    write(path.join(dir, `${i}.json`), JSON.stringify(v, null, 2));
    write(path.join(dir, `${i}.canon`), Buffer.from(canonicalize(JSON.parse(JSON.stringify(v)))));
  });
});

fs.mkdirSync(OUT, { recursive: true });
const only = process.argv.slice(3);
for (const [name, fn] of Object.entries(scenarios)) {
  if (only.length && !only.includes(name)) continue;
  fn();
}
console.log(`gen.js: ${Object.keys(scenarios).length} scenarios in ${OUT}`);
