/**
 * Reads the repository's Dockerfile into stages and instructions, and reproduces a stage without
 * Docker: each instruction of the stage is performed in a directory standing for the image's root.
 * Only the instructions and RUN commands listed here can be reproduced; anything else is an error,
 * so the Dockerfile cannot grow a step the runtime-stage test silently skips.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';

export interface Instruction {
  keyword: string;
  args: string;
}

export interface Stage {
  from: string;
  name: string | null;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

export function parseDockerfile(text: string): Dockerfile {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = keyword.toUpperCase();
    if (upper === 'FROM') {
      const [, from = '', name = null] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ from, name, instructions: [] });
    } else if (stages.length === 0) {
      if (upper !== 'ARG') throw new Error(`Dockerfile: ${keyword} before the first FROM`);
      const [key = '', value = ''] = args.split('=');
      globalArgs[key] = value;
    } else {
      stages[stages.length - 1]?.instructions.push({ keyword: upper, args: args.replace(/\s+/g, ' ') });
    }
  }
  return { globalArgs, stages };
}

/** KEY=VALUE pairs of ENV, LABEL or ARG (values may be double-quoted). */
export function pairs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/([\w.-]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const key = m[1] ?? '';
    const raw = m[2] ?? '';
    out[key] = raw.startsWith('"') ? raw.slice(1, -1) : raw;
  }
  return out;
}

export interface ReproducedStage {
  /** The directory standing for the image's `/`. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  labels: Record<string, string>;
  user: { uid: number; gid: number } | null;
  home: string | null;
  /** ENTRYPOINT + CMD, image paths mapped into `root`. */
  entrypoint: string[];
  cmd: string[];
  /** Every RUN command performed, in order (for assertions). */
  ran: string[];
}

export interface ReproduceOptions {
  /** Where COPY takes files from (the build context: the repository). */
  context: string;
  /** Directories standing for other stages' files: COPY --from=<stage> <src> maps src through this. */
  stageFiles: (stage: string, src: string) => string;
  /** Runs `npm ci` with the Dockerfile's flags (the caller adds cache options). */
  npmCi: (cwd: string, flags: string[]) => void;
}

/** Performs the stage's instructions under `root` (an empty directory). */
export function reproduceStage(stage: Stage, root: string, opts: ReproduceOptions): ReproducedStage {
  const args: Record<string, string> = {};
  const out: ReproducedStage = {
    root,
    workdir: root,
    env: {},
    labels: {},
    user: null,
    home: null,
    entrypoint: [],
    cmd: [],
    ran: [],
  };
  const expand = (s: string): string =>
    s.replace(/\$\{?(\w+)\}?/g, (_, name: string) => args[name] ?? out.env[name] ?? '');
  const mapped = (p: string): string => (path.isAbsolute(p) ? path.join(root, p) : path.join(out.workdir, p));
  for (const { keyword, args: raw } of stage.instructions) {
    switch (keyword) {
      case 'ARG':
        Object.assign(args, pairs(raw));
        break;
      case 'ENV':
        for (const [k, v] of Object.entries(pairs(raw))) out.env[k] = expand(v);
        break;
      case 'LABEL':
        for (const [k, v] of Object.entries(pairs(raw))) out.labels[k] = expand(v);
        break;
      case 'WORKDIR':
        out.workdir = mapped(raw);
        mkdirSync(out.workdir, { recursive: true });
        break;
      case 'COPY': {
        const parts = raw.split(' ');
        const from = parts[0]?.startsWith('--from=') ? parts.shift()?.slice('--from='.length) : undefined;
        const dest = parts.pop() ?? '.';
        const target = mapped(dest);
        for (const src of parts) {
          const source = from === undefined ? path.join(opts.context, src) : opts.stageFiles(from, src);
          const into = dest.endsWith('/') ? path.join(target, path.basename(src)) : target;
          cpSync(source, into, { recursive: true });
        }
        break;
      }
      case 'RUN':
        for (const command of raw.split('&&').map((c) => c.trim())) {
          runCommand(command, out, mapped, opts);
          out.ran.push(command);
        }
        break;
      case 'USER': {
        const [uid, gid] = raw.split(':').map(Number);
        out.user = { uid: uid ?? NaN, gid: gid ?? uid ?? NaN };
        break;
      }
      case 'ENTRYPOINT':
      case 'CMD': {
        const list = JSON.parse(raw) as string[];
        if (keyword === 'ENTRYPOINT') out.entrypoint = list;
        else out.cmd = list;
        break;
      }
      case 'EXPOSE':
      case 'STOPSIGNAL':
        break;
      default:
        throw new Error(`the runtime-stage reproduction does not know the instruction ${keyword} ${raw}`);
    }
  }
  return out;
}

function runCommand(
  command: string,
  out: ReproducedStage,
  mapped: (p: string) => string,
  opts: ReproduceOptions,
): void {
  const words = command.split(' ');
  const [program, ...rest] = words;
  if (program === 'npm' && rest[0] === 'ci') return opts.npmCi(out.workdir, rest.slice(1));
  // Only empties npm's download cache inside the image; the app files are the same without it.
  if (program === 'npm' && rest.join(' ') === 'cache clean --force') return;
  if (program === 'chmod' && rest.length === 2) {
    chmodSync(mapped(rest[1] ?? ''), Number.parseInt(rest[0] ?? '', 8));
    return;
  }
  if (program === 'ln' && rest[0] === '-s' && rest.length === 3) {
    const link = mapped(rest[2] ?? '');
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(mapped(rest[1] ?? ''), link);
    return;
  }
  // The user itself: the test runs the relay with this uid/gid and home (see USER).
  if (program === 'groupadd') return;
  if (program === 'useradd') {
    const home = /--home-dir (\S+)/.exec(command)?.[1];
    out.home = home ?? null;
    return;
  }
  throw new Error(`the runtime-stage reproduction does not know the RUN command "${command}"`);
}

/** `tsc -p tsconfig.build.json --outDir <dir>`: what the build stage's `npm run build` produces. */
export function buildDist(repo: string, outDir: string): void {
  execFileSync(
    process.execPath,
    [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir],
    {
      cwd: repo,
      stdio: 'pipe',
    },
  );
}
