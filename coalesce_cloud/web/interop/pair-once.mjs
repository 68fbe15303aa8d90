// One pairing from the JS side, for tests/web: reads {pin, receiver_spake, binding, offer} as JSON on stdin,
// prints the pair message, the offer's MAC and the receiver confirmation this key expects.
import { SenderPairing } from "../src/pairing.js";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { pin, receiver_spake, binding, offer } = JSON.parse(input);
const { pair, key } = new SenderPairing(pin).finish(receiver_spake, binding);
process.stdout.write(JSON.stringify({ pair, offer_mac: key.offerMac(offer), receiver_confirm: key.receiverConfirm(binding) }));
