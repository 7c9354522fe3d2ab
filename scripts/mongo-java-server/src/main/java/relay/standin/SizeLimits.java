package relay.standin;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.wire.bson.BsonEncoder;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;

/**
 * mongod's size rules for change events. Without {@code $changeStreamSplitLargeEvent}, an event whose BSON is larger
 * than BSONObjMaxInternalSize (16 MiB + 16 KiB) fails the aggregate/getMore with BSONObjectTooLarge (10334). With it,
 * an event larger than 16 MiB + 8 KiB (counting its resume token twice, as the reply's postBatchResumeToken repeats
 * it) is split into fragments: top-level fields sorted by (size, name), packed greedily, each fragment starting with
 * its own {@code _id} and {@code splitEvent: {fragment, of}} (document_source_change_stream_split_large_event.cpp).
 */
final class SizeLimits {

    /** BSONObjMaxUserSize: the largest document a client may store. */
    static final int MAX_USER_SIZE = 16 * 1024 * 1024;
    /** BSONObjMaxInternalSize: the largest document the server serializes (a change event included). */
    static final int MAX_INTERNAL_SIZE = MAX_USER_SIZE + 16 * 1024;
    /** kBSONObjMaxChangeEventSize of the split stage. */
    static final int MAX_CHANGE_EVENT_SIZE = MAX_INTERNAL_SIZE - 8 * 1024;

    private SizeLimits() {
    }

    static int sizeOf(Document document) {
        ByteBuf buffer = Unpooled.buffer();
        try {
            BsonEncoder.encodeDocument(document, buffer);
            return buffer.writerIndex();
        } finally {
            buffer.release();
        }
    }

    /** The size of one field as a BSON element (type, name, value). */
    private static int elementSize(String key, Object value) {
        return sizeOf(new Document(key, value)) - 5; // a document adds its length (4) and a terminator (1)
    }

    static MongoServerError tooLarge(int size, Document event) {
        return new MongoServerError(10334, "BSONObjectTooLarge", String.format("BSONObj size: %d (0x%X) is invalid. "
            + "Size must be between 0 and %d(16MB) First element: _id: %s", size, size, MAX_INTERNAL_SIZE,
            event.get("_id")));
    }

    /** Whether the split stage splits an event of this BSON size (its token counts twice: the PBRT repeats it). */
    static boolean needsSplit(Document event, int size) {
        return size + elementSize("_id", event.get("_id")) > MAX_CHANGE_EVENT_SIZE;
    }

    /** The fragments of a large event, each with the token of its fragment. */
    static List<Document> split(Document event, Position eventPosition) {
        // Every fragment token has the same size (the fragment number has a fixed width).
        int tokenSize = sizeOf(eventPosition.fragment(1).toToken());
        int maxFragmentSize = MAX_CHANGE_EVENT_SIZE - tokenSize;
        record Field(String key, Object value, int size) {
        }
        List<Field> fields = new ArrayList<>();
        for (Map.Entry<String, Object> entry : event.entrySet()) {
            if (!entry.getKey().equals("_id")) {
                fields.add(new Field(entry.getKey(), entry.getValue(), elementSize(entry.getKey(), entry.getValue())));
            }
        }
        fields.sort(Comparator.comparingInt(Field::size).thenComparing(Field::key));
        List<Document> fragments = new ArrayList<>();
        int i = 0;
        while (i < fields.size()) {
            Document fragment = new Document("_id", eventPosition.fragment(fragments.size() + 1).toToken())
                .append("splitEvent", new Document("fragment", fragments.size() + 1).append("of", 0));
            int fragmentSize = sizeOf(fragment);
            do {
                Field field = fields.get(i);
                fragment.append(field.key(), field.value());
                fragmentSize += field.size();
            } while (++i < fields.size() && fragmentSize + fields.get(i).size() <= maxFragmentSize);
            if (fragmentSize > maxFragmentSize) {
                throw new MongoServerError(7182500, "Location7182500", "Splitting change event failed: fragment size "
                    + fragmentSize + " is greater than maximum allowed fragment size " + maxFragmentSize);
            }
            fragments.add(fragment);
        }
        for (Document fragment : fragments) {
            ((Document) fragment.get("splitEvent")).put("of", fragments.size());
        }
        return fragments;
    }
}
