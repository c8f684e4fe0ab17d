'use strict';
// The build step: writes VERSION from the git commit Bakery checked out
// (the release directory is named after it) or from $APP_VERSION.
const fs = require('fs');
const path = require('path');
const version = process.env.APP_VERSION || path.basename(__dirname).slice(0, 12);
fs.writeFileSync(path.join(__dirname, 'VERSION'), version + '\n');
console.log('built version ' + version);
