#!/usr/bin/env node
// tufjs_client.cjs: an independent TUF client for tuf-mirror's tests (tuf-js, CommonJS).
//
//   NODE_PATH=.tools/node/node_modules node tests/peers/tufjs_client.cjs \
//       --metadata-url URL --targets-url URL --root ROOT.json [options] [TARGET ...]
//
// Same contract as tuf_client.py: one refresh, then for every TARGET a lookup through the
// delegation tree and a download (unless cached), one line each:
//     OK <target> <length> <sha256> <local path>
//     ERROR <target> <ErrorClass>: <message>
// A failed refresh prints `ERROR refresh <ErrorClass>: <message>`; with no TARGET,
// `OK refresh cache=<dir>`. Exit status 0 when every line is OK, 1 after any ERROR,
// 2 for a usage error.
//
// Options:
//   --cache DIR          metadata and target cache (default: a new temporary directory)
//   --walk-all           after the refresh, load every delegated targets role (breadth
//                        first; uses tuf-js's non-public Updater.loadTargets) and print
//                        `OK walk-all roles=N targets=M`
//   --file-fetcher DIR   read <scheme>://<host>/<path> from DIR/<path> instead of HTTP
//                        (as tuf_client.py --file-fetcher); a missing file is an HTTP 404
//   --timing             print `TIME <phase> <seconds>s` lines to stderr
//
// Needs tuf-js 4.1.0 (scripts/install-test-deps.sh installs it into .tools/node; node
// ^20.17 or >= 22.9). Retries are off and the fetch timeout is 10 s, so a failing server
// shows up at once.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { Updater, BaseFetcher } = require('tuf-js');
const { DownloadHTTPError } = require('tuf-js/dist/error');

const USAGE = 'usage: tufjs_client.cjs --metadata-url URL --targets-url URL --root ROOT.json ' +
  '[--cache DIR] [--walk-all] [--file-fetcher DIR] [--timing] [TARGET ...]';

function usage(msg) {
  if (msg) console.error(`tufjs_client.cjs: ${msg}`);
  console.error(USAGE);
  process.exit(2);
}

function parse(argv) {
  const a = { targets: [], walkAll: false, timing: false };
  const value = (i) => {
    if (i >= argv.length) usage(`${argv[i - 1]} needs a value`);
    return argv[i];
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--metadata-url') a.metadataUrl = value(++i);
    else if (k === '--targets-url') a.targetsUrl = value(++i);
    else if (k === '--root') a.root = value(++i);
    else if (k === '--cache') a.cache = value(++i);
    else if (k === '--file-fetcher') a.fileFetcher = value(++i);
    else if (k === '--walk-all') a.walkAll = true;
    else if (k === '--timing') a.timing = true;
    else if (k === '-h' || k === '--help') usage();
    else if (k.startsWith('--')) usage(`unknown option ${k}`);
    else a.targets.push(k);
  }
  if (!a.metadataUrl || !a.targetsUrl || !a.root) usage('--metadata-url, --targets-url and --root are required');
  if (a.fileFetcher && !fs.statSync(a.fileFetcher, { throwIfNoEntry: false })?.isDirectory()) {
    usage(`--file-fetcher ${a.fileFetcher}: not a directory`);
  }
  return a;
}

// Serves tuf-js's downloads from a local directory tree (DIR = the server's document root).
class FileFetcher extends BaseFetcher {
  constructor(root) {
    super();
    this.root = fs.realpathSync(root);
    this.files = 0;
  }

  async fetch(u) {
    const p = new URL(u).pathname;
    let decoded = p;
    try { decoded = decodeURIComponent(p); } catch (_) { /* keep the raw path */ }
    for (const candidate of [decoded, p]) {
      const full = path.resolve(this.root, '.' + candidate);
      if (!full.startsWith(this.root + path.sep)) continue;
      if (fs.statSync(full, { throwIfNoEntry: false })?.isFile()) {
        this.files += 1;
        return fs.createReadStream(full);
      }
    }
    throw new DownloadHTTPError(`${u}: no such file under ${this.root}`, 404);
  }
}

// Load every delegated targets role reachable from the top-level targets.
async function walkAll(up) {
  let roles = 0;
  let targets = 0;
  const queue = [['targets', 'root']];
  const seen = new Set();
  while (queue.length > 0) {
    const [role, parent] = queue.shift();
    if (seen.has(role)) continue;
    seen.add(role);
    const md = await up.loadTargets(role, parent); // not public API in tuf-js 4.x
    if (!md) throw new Error(`role ${role} could not be loaded`);
    roles += 1;
    targets += Object.keys(md.signed.targets || {}).length;
    const d = md.signed.delegations;
    if (d && d.roles) for (const r of Object.keys(d.roles)) queue.push([r, role]);
    if (d && d.succinctRoles) for (const r of d.succinctRoles.getRoles()) queue.push([r, role]);
  }
  return { roles, targets };
}

function errLine(e) {
  return `${e && e.constructor ? e.constructor.name : 'Error'}: ${e && e.message ? e.message : e}`;
}

async function main() {
  const a = parse(process.argv.slice(2));
  const timing = (what, t0) => {
    if (a.timing) console.error(`TIME ${what} ${((Date.now() - t0) / 1000).toFixed(3)}s`);
  };
  const cache = a.cache || fs.mkdtempSync(path.join(os.tmpdir(), 'tufjs-client-'));
  const metadataDir = path.join(cache, 'metadata');
  const targetDir = path.join(cache, 'targets');
  fs.mkdirSync(metadataDir, { recursive: true });
  fs.mkdirSync(targetDir, { recursive: true });
  // tuf-js takes its trust anchor from metadataDir/root.json (a warm cache keeps its own)
  if (!fs.existsSync(path.join(metadataDir, 'root.json'))) {
    fs.copyFileSync(a.root, path.join(metadataDir, 'root.json'));
  }
  const fetcher = a.fileFetcher ? new FileFetcher(a.fileFetcher) : undefined;

  const tStart = Date.now();
  let up;
  try {
    up = new Updater({
      metadataDir, metadataBaseUrl: a.metadataUrl, targetDir, targetBaseUrl: a.targetsUrl,
      fetcher, config: { fetchRetries: 0, fetchTimeout: 10000 },
    });
    await up.refresh();
  } catch (e) {
    console.log(`ERROR refresh ${errLine(e)}`);
    return 1;
  }
  timing('refresh', tStart);
  if (a.targets.length === 0) console.log(`OK refresh cache=${cache}`);

  let rc = 0;
  if (a.walkAll) {
    const t0 = Date.now();
    try {
      const { roles, targets } = await walkAll(up);
      console.log(`OK walk-all roles=${roles} targets=${targets}`);
    } catch (e) {
      console.log(`ERROR walk-all ${errLine(e)}`);
      rc = 1;
    }
    timing('walk-all', t0);
  }

  for (const name of a.targets) {
    const t0 = Date.now();
    try {
      const info = await up.getTargetInfo(name);
      if (!info) {
        console.log(`ERROR ${name} TargetNotFound: ${name} not found in any targets role`);
        rc = 1;
      } else {
        const file = path.join(targetDir, encodeURIComponent(name));
        const p = (await up.findCachedTarget(info, file)) || (await up.downloadTarget(info, file));
        const digest = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
        console.log(`OK ${name} ${info.length} ${digest} ${p}`);
      }
    } catch (e) {
      console.log(`ERROR ${name} ${errLine(e)}`);
      rc = 1;
    }
    timing(`target ${name}`, t0);
  }
  timing('total', tStart);
  if (a.timing && fetcher) console.error(`TIME file-fetcher files=${fetcher.files}`);
  return rc;
}

main().then((rc) => process.exit(rc), (e) => {
  console.log(`ERROR internal ${errLine(e)}`);
  process.exit(1);
});
