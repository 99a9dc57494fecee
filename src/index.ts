export { Recipient } from './durable/recipient';

export default {
  async fetch() {
    return new Response('ok');
  },
} satisfies ExportedHandler;
