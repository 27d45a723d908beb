// A chat room: state shared across connections. Each message goes to every member of the room
// (the sender too), in this process; with --workers N each worker has its own rooms.
// Served at /wsChatRoom; the room is the query string's `room` (default "lobby"):
//   new WebSocket(`ws://${location.host}/wsChatRoom?room=kitchen`)
import { WebSocketHandler } from '../../../../../src/index.js';

/** Room name -> its members; a room disappears with its last member. */
const rooms = new Map<string, Set<ChatRoom>>();

let nextGuest = 1;

export default class ChatRoom extends WebSocketHandler {
  // Fields are this connection's state: one instance per connection.
  room = '';
  nick = '';

  override onOpen(): void {
    const query = new URL(this.request.url ?? '/', 'http://localhost').searchParams;
    this.room = query.get('room') || 'lobby';
    this.nick = query.get('nick') || `guest${nextGuest++}`;
    let members = rooms.get(this.room);
    if (members === undefined) rooms.set(this.room, (members = new Set()));
    members.add(this);
    this.#broadcast(`* ${this.nick} joined ${this.room} (${members.size} here)`);
  }

  override onMessage(message: string | Buffer): void {
    const text = typeof message === 'string' ? message : `[${message.length} bytes]`;
    this.#broadcast(`${this.nick}: ${text}`);
  }

  override onClose(): void {
    const members = rooms.get(this.room);
    if (members === undefined || !members.delete(this)) return;
    if (members.size === 0) rooms.delete(this.room);
    else this.#broadcast(`* ${this.nick} left`);
  }

  #broadcast(text: string): void {
    // send() on a member that is already closing does nothing and returns false.
    for (const member of rooms.get(this.room) ?? []) member.send(text);
  }
}
