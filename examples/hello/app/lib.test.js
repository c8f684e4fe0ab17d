'use strict';
// Run by `node --test` in the build's test step.
const test = require('node:test');
const assert = require('node:assert');
const { greet } = require('./lib');

test('greet uses the greeting and the version', () => {
  assert.strictEqual(greet('hi', 'v1'), 'hi from v1');
  assert.strictEqual(greet(undefined, 'v2'), 'hello from v2');
});
