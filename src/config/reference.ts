/**
 * The configuration reference as a Markdown table, generated from the schema so that the README can
 * never drift from the code (a unit test compares them; `npm run docs:config` prints it).
 */
import { schemaLeaves } from './load.js';

export function configReferenceMarkdown(): string {
  const rows = ['| Variable | Key | Default | Description |', '| --- | --- | --- | --- |'];
  for (const [key, leaf] of schemaLeaves()) {
    const def =
      leaf.default === null
        ? '*(required)*'
        : leaf.default === ''
          ? '*(empty)*'
          : `\`${String(leaf.default)}\``;
    rows.push(`| \`${leaf.env ?? ''}\` | \`${key}\` | ${def} | ${(leaf.doc ?? '').replace(/\|/g, '\\|')} |`);
  }
  return rows.join('\n');
}
