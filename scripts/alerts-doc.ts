// Prints the README's alert table from deploy/prometheus/alerts.yaml; with --write, updates README.md.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { alertsReferenceMarkdown, readAlertsFile, withAlertsReference } from './alertsReference.js';

const root = path.resolve(import.meta.dirname, '..');
const table = alertsReferenceMarkdown(readAlertsFile(root));
if (process.argv.includes('--write')) {
  const readme = path.join(root, 'README.md');
  writeFileSync(readme, withAlertsReference(readFileSync(readme, 'utf8'), table));
} else {
  process.stdout.write(`${table}\n`);
}
