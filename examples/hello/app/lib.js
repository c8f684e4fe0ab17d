'use strict';
// greet builds the answer of the app's / route.
function greet(greeting, version) {
  return `${greeting || 'hello'} from ${version}`;
}
module.exports = { greet };
