import type { Command } from 'commander';

/** Operator commands (token, status, check-config, resume-from-token). */
export function registerOperatorCommands(_program: Command): void {}
