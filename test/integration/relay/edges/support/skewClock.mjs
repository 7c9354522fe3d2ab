// Preloaded with `node --import` into a relay process to give it a wrong wall clock:
// Date.now() and new Date() run EDGE_TEST_CLOCK_SKEW_MS milliseconds ahead (negative: behind).
// Monotonic clocks (performance.now, process.hrtime) are left alone, as NTP steps leave them.
const skew = Number(process.env.EDGE_TEST_CLOCK_SKEW_MS ?? '0');
const RealDate = globalThis.Date;

class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + skew);
    else super(...args);
  }

  static now() {
    return RealDate.now() + skew;
  }
}

globalThis.Date = SkewedDate;
