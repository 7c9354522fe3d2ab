import { Kafka, logLevel } from 'kafkajs';
import { prepareTopic } from './bench/consumerRun.js';
const kafka = new Kafka({ brokers: process.env.KAFKA_BROKERS!.split(','), logLevel: logLevel.NOTHING });
console.log(await prepareTopic(kafka, Number(process.argv[2]), 200));
