/**
 * Bounds the `ns` label of the event counter. Under `db.*` or `*` every collection that ever changes
 * would otherwise add series without limit. The first `limit` namespaces seen keep their own value;
 * changes of any further namespace count under `_other`. A limit of 0 drops the label: the value is
 * empty, which Prometheus stores as "no ns label".
 * Invariant: at most `limit` + 1 distinct values are ever returned.
 */
import { OTHER_NAMESPACES } from './names.js';

export class NamespaceLabel {
  private readonly seen = new Set<string>();

  constructor(private readonly limit: number) {}

  valueFor(ns: string): string {
    if (this.limit === 0) return '';
    if (this.seen.has(ns)) return ns;
    if (this.seen.size < this.limit) {
      this.seen.add(ns);
      return ns;
    }
    return OTHER_NAMESPACES;
  }
}
