// Served at /wsEcho (the file's name after /ws): every message goes back with its own type.
// In your own project, import from 'pef-front-websocket'.
import { WebSocketHandler, type MessageType } from '../../../src/index.js';

export default class Echo extends WebSocketHandler {
  override onMessage(message: string | Buffer, type: MessageType): void {
    this.send(message, type);
  }
}
