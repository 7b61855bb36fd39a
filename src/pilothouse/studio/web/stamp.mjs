// Records which sources ../static/ was built from: the SHA-256 of every source file
// (sorted paths; each as "path\0bytes\0"). tests/studio/test_build.py recomputes it, so a
// change to the sources without a rebuild fails the tests.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const here = new URL('.', import.meta.url).pathname;
const SOURCES = ['index.html', 'package.json', 'package-lock.json', 'vite.config.js', 'stamp.mjs', 'src'];

function walk(path, out) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path)) walk(join(path, name), out);
  } else {
    out.push(relative(here, path).split(sep).join('/'));
  }
  return out;
}

const files = SOURCES.flatMap((name) => walk(join(here, name), [])).sort();
const hash = createHash('sha256');
for (const file of files) {
  hash.update(file + '\0');
  hash.update(readFileSync(join(here, file)));
  hash.update('\0');
}
const info = { sources_sha256: hash.digest('hex'), files: files.length };
writeFileSync(join(here, '..', 'static', 'build-info.json'), JSON.stringify(info, null, 2) + '\n');
console.log(`static/build-info.json: ${info.files} source files, ${info.sources_sha256}`);
