/**
 * The layering the folder names promise, checked on the import graph of src/ (every `import … from`
 * and `export … from` of a relative path, type-only ones included: a type import still ties two
 * modules' designs together). Config sits at the bottom and imports no other layer; no module reaches
 * itself through its imports (a cycle makes load order matter and the modules one design).
 */
import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src');
const SPECIFIER = /^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/gm;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

/** src-relative module path → the src-relative modules it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(SPECIFIER)].map((m) =>
      path.relative(SRC, path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts'))),
    );
    graph.set(path.relative(SRC, file), targets);
  }
  return graph;
}

/** Every cycle, each as the path that closes it (a → b → a), found by depth-first search. */
function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next].join(' → '));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return found;
}

describe('layering of src/', () => {
  const graph = importGraph();

  it('reads the import graph (sanity: the relay app imports the config)', () => {
    expect(graph.get(path.join('app', 'relayApp.ts'))).to.include(path.join('config', 'settings.ts'));
  });

  it('has no import cycles', () => {
    expect(cycles(graph)).to.deep.equal([]);
  });

  it('config sits at the bottom: src/config imports nothing from another layer', () => {
    const upward = [...graph]
      .filter(([from]) => from.startsWith(`config${path.sep}`))
      .flatMap(([from, targets]) =>
        targets.filter((t) => !t.startsWith(`config${path.sep}`)).map((t) => `${from} → ${t}`),
      );
    expect(upward).to.deep.equal([]);
  });
});
