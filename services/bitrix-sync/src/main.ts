import { runService } from '@puente/runtime';
import { service } from './app.js';

await runService(service, process.env);
