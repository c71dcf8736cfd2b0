export { EventExamples } from './examples.js';
