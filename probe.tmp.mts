import { MongoClient } from 'mongodb';
const c = new MongoClient(process.env.MONGODB_URI!);
await c.connect();
const col = c.db('probe').collection<any>('cs' + Date.now());
const s = col.watch([], { maxAwaitTimeMS: 200 });
const t0 = Date.now();
const first = await s.tryNext();
console.log('first', first, 'token', s.resumeToken, Date.now() - t0, 'ms');
await col.insertOne({ _id: 1 });
await col.insertOne({ _id: 2 });
const s2 = col.watch([], { startAfter: s.resumeToken, maxAwaitTimeMS: 200 });
let e; const got = [];
while ((e = await s2.tryNext()) || got.length < 2) { if (e) got.push((e as any).documentKey._id); }
console.log('resumed from first pbrt', got);
await s.close(); await s2.close();
// event in first batch
const s3 = col.watch([], { maxAwaitTimeMS: 200, startAtOperationTime: undefined });
console.log('s3 first', await s3.tryNext(), s3.resumeToken);
await s3.close();
await c.close();
