/**
 * A broker JVM launched again (a restart in the cluster suite) must not be taken for dead because the
 * previous launch's process exits, or reports its exit, after the new launch began: the fault scenarios
 * restart nodes right after killing them, and a late exit event failed the restart ("kafka exited
 * during startup") while the new broker was running fine.
 *
 * `java` is a stand-in here (JAVA_HOME points at a directory whose bin/java is a small Node script):
 * its first launch exits on its own after a moment, the second keeps running. The first one's exit
 * thus lands, deterministically, while the second launch waits for readiness.
 */
import { expect } from 'chai';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { kafkaJvm } from '../../../scripts/services/kafka.js';
import { isAlive } from '../../../scripts/services/state.js';

const FAKE_JAVA = `#!/usr/bin/env node
// First launch: exit after a moment. Later launches: run until killed.
const fs = require('node:fs');
const marker = require('node:path').join(process.cwd(), 'launched-once');
if (fs.existsSync(marker)) setInterval(() => {}, 1000);
else {
  setTimeout(() => process.exit(0), 300);
  fs.writeFileSync(marker, '');
}
`;

describe('services: a relaunched Kafka JVM', function () {
  this.timeout(60_000);
  let dir: string;
  let javaHome: string | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kafka-jvm-'));
    await mkdir(path.join(dir, 'jdk', 'bin'), { recursive: true });
    const java = path.join(dir, 'jdk', 'bin', 'java');
    await writeFile(java, FAKE_JAVA);
    await chmod(java, 0o755);
    javaHome = process.env.JAVA_HOME;
    process.env.JAVA_HOME = path.join(dir, 'jdk');
  });

  afterEach(async () => {
    if (javaHome === undefined) delete process.env.JAVA_HOME;
    else process.env.JAVA_HOME = javaHome;
    await rm(dir, { recursive: true, force: true });
  });

  it("is not reported dead when the previous launch's process exits during its startup", async () => {
    let ready = false;
    const jvm = kafkaJvm({
      dataDir: dir,
      props: path.join(dir, 'server.properties'), // only a marker of the command line here
      classpath: dir,
      jvm: [],
      logProps: [],
      detached: false,
      ready: () => Promise.resolve(ready),
    });
    await jvm.launch();
    const first = jvm.pid;
    // Once the first process has taken the "first launch" role, it exits ~300 ms later.
    while (!existsSync(path.join(dir, 'launched-once'))) await new Promise((r) => setTimeout(r, 20));
    await jvm.launch(); // the first one is still running: its exit comes during this launch's startup
    expect(jvm.pid).to.not.equal(first);
    const waiting = jvm.waitReady(30_000);
    // Readiness only once the first process is gone (and its exit event had time to arrive).
    const gone = (async () => {
      while (isAlive(first)) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 1000));
      ready = true;
    })();
    try {
      await waiting;
      expect(jvm.running, 'the second launch is running').to.equal(true);
    } finally {
      await gone;
      await jvm.kill();
    }
  });
});
