import { Dealer, Router } from "zeromq";
import type { DealerSocket, MessageSockets, RouterSocket, Transport } from "./interfaces";

/**
 * Message sockets over real ZeroMQ: a ROUTER bound on the given endpoint, DEALERs connected
 * through `transport` (own loopback source address, or a Tor circuit per identity) or, without a
 * transport, straight to the endpoint.
 */
export function zmqSockets(transport?: Transport): MessageSockets {
  return {
    async bindRouter(endpoint: string): Promise<RouterSocket> {
      const router = new Router({ linger: 0 });
      await router.bind(endpoint);
      const bound = router.lastEndpoint ?? endpoint;
      return {
        endpoint: bound,
        get closed() {
          return router.closed;
        },
        send: (frames) => router.send(frames),
        close: () => router.close(),
        [Symbol.asyncIterator]: () => router[Symbol.asyncIterator](),
      };
    },
    connectDealer(endpoint: string, identity: string): DealerSocket {
      const dealer = new Dealer({ linger: 0 });
      if (transport) transport.zmqConnect(dealer, endpoint, identity);
      else dealer.connect(endpoint);
      return {
        send: (frame) => dealer.send(frame),
        close: () => dealer.close(),
        [Symbol.asyncIterator]: () => dealer[Symbol.asyncIterator](),
      };
    },
  };
}
