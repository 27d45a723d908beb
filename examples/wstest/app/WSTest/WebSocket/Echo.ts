// The seed's Echo.pm: every message goes back to its sender with its own type.
// Served at /wsEcho (the file's name after /ws). In your own project, import from 'pef-front-websocket'.
import { WebSocketHandler, type MessageType } from '../../../../../src/index.js';

export default class Echo extends WebSocketHandler {
  override onMessage(message: string | Buffer, type: MessageType): void {
    this.send(message, type);
  }
}
