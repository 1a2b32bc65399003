// Every test of this directory, for Node 22 and later: there `node --test DIR` runs DIR as
// a module (package.json's main, this file) instead of searching it for *.test.mjs.
// Node 20 searches the directory and never runs this file (its name matches no test pattern).
import './worker.test.mjs';
import './sdk.test.mjs';
