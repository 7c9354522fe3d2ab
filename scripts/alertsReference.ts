/**
 * The README's alert table, generated from the alert rules (deploy/prometheus/alerts.yaml) so that
 * thresholds and durations in the README can never drift from the rules (a unit test compares them;
 * `npm run docs:alerts` prints the table, `npm run docs:alerts -- --write` updates the README).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

export const ALERTS_FILE = 'deploy/prometheus/alerts.yaml';
export const MARKERS = { start: '<!-- alerts-reference:start -->', end: '<!-- alerts-reference:end -->' };

export interface AlertDoc {
  alert: string;
  severity: string;
  expr: string;
  for: string | null;
  description: string;
  runbookAnchor: string;
}

interface RuleFile {
  spec?: { groups?: { rules?: Record<string, unknown>[] }[] };
}

export function alertDocs(yamlText: string): AlertDoc[] {
  const doc = parse(yamlText) as RuleFile;
  return (doc.spec?.groups ?? []).flatMap((group) =>
    (group.rules ?? []).flatMap((rule): AlertDoc[] => {
      if (typeof rule.alert !== 'string') return [];
      const labels = (rule.labels ?? {}) as Record<string, string>;
      const annotations = (rule.annotations ?? {}) as Record<string, string>;
      return [
        {
          alert: rule.alert,
          severity: labels.severity ?? '',
          expr: String(rule.expr).replace(/\s+/g, ' ').trim(),
          for: typeof rule.for === 'string' ? rule.for : null,
          description: annotations.description ?? '',
          runbookAnchor: /#([\w-]+)$/.exec(annotations.runbook_url ?? '')?.[1] ?? '',
        },
      ];
    }),
  );
}

export function alertsReferenceMarkdown(yamlText: string): string {
  const rows = ['| Alert | Severity | Fires when | Rule |', '| --- | --- | --- | --- |'];
  for (const a of alertDocs(yamlText)) {
    const rule = `\`${a.expr}\`${a.for ? ` for ${a.for}` : ''}`;
    rows.push(
      `| [${a.alert}](#${a.runbookAnchor}) | ${a.severity} | ${a.description.replace(/\|/g, '\\|')} | ${rule.replace(/\|/g, '\\|')} |`,
    );
  }
  return rows.join('\n');
}

export function readAlertsFile(root: string): string {
  return readFileSync(path.join(root, ALERTS_FILE), 'utf8');
}

/** The README with its alert table replaced. */
export function withAlertsReference(readme: string, table: string): string {
  const start = readme.indexOf(MARKERS.start);
  const end = readme.indexOf(MARKERS.end);
  if (start < 0 || end < start)
    throw new Error(`README.md lacks the ${MARKERS.start} … ${MARKERS.end} markers`);
  return `${readme.slice(0, start + MARKERS.start.length)}\n${table}\n${readme.slice(end)}`;
}
