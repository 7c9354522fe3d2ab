// Prints the configuration reference table (paste between the README's config-reference markers).
import { configReferenceMarkdown } from '../src/config/reference.js';

process.stdout.write(`${configReferenceMarkdown()}\n`);
